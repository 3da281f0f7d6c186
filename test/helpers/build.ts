import { spawn } from 'node:child_process'
import { projectRoot } from '../../src/config.js'

let built: Promise<void> | null = null

/**
 * Runs `npm run build` once per test process, as a release would, and
 * resolves when dist/ holds the compiled server, scripts and migrations.
 */
export async function buildOnce (): Promise<void> {
  built ??= new Promise<void>((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'build'], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.on('error', reject)
    child.on('close', (code) => { code === 0 ? resolve() : reject(new Error(`npm run build exited with ${code}:\n${output}`)) })
  })
  await built
}
