import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { projectRoot } from '../../src/config.js'

export interface RunningServer {
  url: string
  stop: () => Promise<void>
}

/** Starts scripts/bench/serve.ts in a process of its own and waits for its address. */
export async function startServer (mode: 'service' | 'baseline', env: Record<string, string>): Promise<RunningServer> {
  // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each server, for finding where time goes.
  const profile = process.env.BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
  const child: ChildProcess = spawn(process.execPath, [...profile, '--import', 'tsx', path.join(projectRoot, 'scripts/bench/serve.ts'), mode], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ENV_FILE: '/dev/null', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} server did not start:\n${output}`)), 60_000)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const match = /listening (http:\/\/\S+)/.exec(output)
      if (match?.[1] !== undefined) { clearTimeout(timer); resolve(match[1]) }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${mode} server exited with ${code}:\n${output}`)) })
  })
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM')
      await exited
    }
  }
}
