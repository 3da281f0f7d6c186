import { spawn, type ChildProcessByStdio } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Readable } from 'node:stream'
import { projectRoot } from '../config.js'

export type TsxChild = ChildProcessByStdio<null, Readable, Readable>

export interface TsxChildOptions {
  /** The child's whole environment besides PATH and HOME: nothing else is inherited. */
  env: Record<string, string>
  /** Node options before the script, e.g. --cpu-prof. */
  nodeArgs?: string[]
}

/**
 * Starts a project script (scripts/*.ts, src/server.ts) under tsx, as an
 * operator would, from the project root; a compiled one (dist/….js) runs
 * under plain node, as in production. ENV_FILE=/dev/null, so a
 * developer's .env cannot leak into the child.
 */
export function spawnTsx (script: string, args: string[], { env, nodeArgs = [] }: TsxChildOptions): TsxChild {
  return spawn(process.execPath, [...nodeArgs, ...entryOf(script), ...args], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, ENV_FILE: '/dev/null' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
}

/*
 * Compiled code (a build in dist/, the test suite's copy) starts the
 * compiled twin of a script named by its source, when the twin is there:
 * tsx's loader costs a Node process about 1.5 s of CPU.
 */
const here = fileURLToPath(import.meta.url)
const compiledRoot = here.endsWith('.js') ? path.resolve(path.dirname(here), '../..') : null

function entryOf (script: string): string[] {
  if (script.endsWith('.js')) return [path.join(projectRoot, script)]
  const twin = compiledRoot === null ? null : path.join(compiledRoot, script.replace(/\.ts$/, '.js'))
  if (twin !== null && fs.existsSync(twin)) return [twin]
  return ['--import', 'tsx', path.join(projectRoot, script)]
}

export interface TsxRun { code: number | null, stdout: string, stderr: string }

/** Runs a script to its end; after `timeoutMs` it is killed and the promise rejects. */
export async function runTsx (script: string, args: string[], options: TsxChildOptions & { timeoutMs?: number }): Promise<TsxRun> {
  const child = spawnTsx(script, args, options)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  return await new Promise((resolve, reject) => {
    const timer = options.timeoutMs === undefined
      ? null
      : setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${script} ${args.join(' ')} timed out\n${stdout}\n${stderr}`)) }, options.timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      if (timer !== null) clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

export interface TsxServer {
  /** The first group of `ready` in the child's output, e.g. its address. */
  address: string
  child: TsxChild
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>
  /** Everything it printed so far, stdout and stderr. */
  output: () => string
  /** Resolves once its output matches `pattern`; rejects if it exits or 30 s pass first. */
  printed: (pattern: RegExp) => Promise<void>
  /** SIGTERM, then waits for the exit. */
  stop: () => Promise<void>
}

/**
 * Starts a long-running script and waits until its output matches `ready`
 * (whose first group is the address); rejects if it exits or takes longer
 * than `timeoutMs`.
 */
export async function startTsx (script: string, args: string[], options: TsxChildOptions & { ready: RegExp, timeoutMs?: number }): Promise<TsxServer> {
  const child = spawnTsx(script, args, options)
  let output = ''
  const watchers: Array<{ pattern: RegExp, resolve: () => void }> = []
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
  const onData = (chunk: Buffer): void => {
    output += chunk.toString()
    for (const watcher of watchers.filter((w) => w.pattern.test(output))) {
      watchers.splice(watchers.indexOf(watcher), 1)
      watcher.resolve()
    }
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  const printed = async (pattern: RegExp, timeoutMs = 30_000): Promise<void> => {
    if (pattern.test(output)) return
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        new Promise<void>((resolve) => watchers.push({ pattern, resolve })),
        exited.then((code) => { throw new Error(`${script} exited with ${code} before printing ${pattern}:\n${output}`) }),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${script} did not print ${pattern} within ${timeoutMs} ms:\n${output}`)) }, timeoutMs) })
      ])
    } finally {
      clearTimeout(timer)
    }
  }
  await printed(options.ready, options.timeoutMs ?? 60_000)
  const address = options.ready.exec(output)?.[1] ?? ''
  return {
    address,
    child,
    exited,
    output: () => output,
    printed,
    stop: async () => {
      child.kill('SIGTERM')
      await exited
    }
  }
}
