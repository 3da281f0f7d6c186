import { spawn } from 'node:child_process'
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
