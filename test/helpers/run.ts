import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import path from 'node:path'
import { projectRoot } from '../../src/config.js'

export interface RunResult { code: number | null, stdout: string, stderr: string }

/** Runs a project script (scripts/*.ts, src/server.ts) as an operator would, under tsx. */
export async function runScript (script: string, args: string[], env: Record<string, string>, { timeoutMs = 120_000 } = {}): Promise<RunResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, script), ...args], {
      cwd: projectRoot,
      // Only what the test gives, so a developer's .env cannot leak in.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, ENV_FILE: '/dev/null' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${script} ${args.join(' ')} timed out\n${stdout}\n${stderr}`)) }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

export interface ServerProcess {
  /** http://127.0.0.1:<port> */
  address: string
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>
  /** Everything it printed so far. */
  output: () => string
  /** Resolves once its output matches the pattern; rejects if it exits or 30 s pass first. */
  printed: (pattern: RegExp) => Promise<void>
  child: ChildProcessWithoutNullStreams
}

/** The production entry point, as `npm run build` writes it. */
export const COMPILED_SERVER = path.join(projectRoot, 'dist/src/server.js')

/**
 * Starts the real server on a free port and waits until it listens: the
 * TypeScript under tsx, or with `compiled` the build, as plain `node`.
 */
export async function startServerProcess (env: Record<string, string>, { compiled = false } = {}): Promise<ServerProcess> {
  const entry = compiled ? [COMPILED_SERVER] : ['--import', 'tsx', path.join(projectRoot, 'src/server.ts')]
  const child = spawn(process.execPath, entry, {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, PORT: '0', ENV_FILE: '/dev/null', LOG_LEVEL: 'info' },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  child.stdin.end()
  let output = ''
  const watchers: Array<{ pattern: RegExp, resolve: () => void }> = []
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`server did not start:\n${output}`)) }, 60_000)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      for (const watcher of watchers.filter((w) => w.pattern.test(output))) {
        watchers.splice(watchers.indexOf(watcher), 1)
        watcher.resolve()
      }
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match?.[1] !== undefined) { clearTimeout(timer); resolve(match[1]) }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${output}`)) })
  })
  const printed = async (pattern: RegExp): Promise<void> => {
    if (pattern.test(output)) return
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        new Promise<void>((resolve) => watchers.push({ pattern, resolve })),
        exited.then((code) => { throw new Error(`server exited with ${code} before printing ${pattern}:\n${output}`) }),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`server did not print ${pattern} within 30 s:\n${output}`)) }, 30_000) })
      ])
    } finally {
      clearTimeout(timer)
    }
  }
  return { address, exited, output: () => output, printed, child }
}
