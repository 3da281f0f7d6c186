import { startTsx } from '../../src/cli/tsx-child.js'
import { readSettings } from '../../src/env-reader.js'
import { settings } from '../../src/settings/all.js'

export interface Stopped {
  /** From SIGTERM to the exit of the process. */
  ms: number
  code: number | null
}

export interface RunningServer {
  url: string
  pid: number
  /** SIGTERM, then waits for the exit, timed. */
  stop: () => Promise<Stopped>
}

/** Starts scripts/bench/serve.ts in a process of its own and waits for its address. */
export async function startServer (mode: 'service' | 'baseline', env: Record<string, string>): Promise<RunningServer> {
  // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each server, for finding where time goes.
  const profileDir = readSettings(process.env, (read) => read.text(settings.BENCH_CPU_PROF))
  const profile = profileDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]
  const server = await startTsx('scripts/bench/serve.ts', [mode], { env: { LOG_LEVEL: 'warn', ...env }, nodeArgs: profile, ready: /listening (http:\/\/\S+)/ })
  let stopped: Promise<Stopped> | null = null
  return {
    url: server.address,
    pid: server.child.pid ?? 0,
    stop: async () => {
      stopped ??= (async () => {
        const started = process.hrtime.bigint()
        await server.stop()
        const ms = Number(process.hrtime.bigint() - started) / 1e6
        return { ms, code: await server.exited }
      })()
      return await stopped
    }
  }
}
