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
  child: ChildProcessWithoutNullStreams
}

/** Starts the real server (src/server.ts) on a free port and waits until it listens. */
export async function startServerProcess (env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'src/server.ts')], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, PORT: '0', ENV_FILE: '/dev/null', LOG_LEVEL: 'info' },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  child.stdin.end()
  let output = ''
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`server did not start:\n${output}`)) }, 60_000)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match?.[1] !== undefined) { clearTimeout(timer); resolve(match[1]) }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${output}`)) })
  })
  return { address, exited, output: () => output, child }
}
