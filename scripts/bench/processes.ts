import { startTsx } from '../../src/cli/tsx-child.js'

export interface RunningServer {
  url: string
  stop: () => Promise<void>
}

/** Starts scripts/bench/serve.ts in a process of its own and waits for its address. */
export async function startServer (mode: 'service' | 'baseline', env: Record<string, string>): Promise<RunningServer> {
  // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each server, for finding where time goes.
  const profile = process.env.BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
  const server = await startTsx('scripts/bench/serve.ts', [mode], { env: { LOG_LEVEL: 'warn', ...env }, nodeArgs: profile, ready: /listening (http:\/\/\S+)/ })
  return { url: server.address, stop: server.stop }
}
