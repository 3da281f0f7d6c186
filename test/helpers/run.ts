import { runTsx, startTsx, type TsxRun, type TsxServer } from '../../src/cli/tsx-child.js'

export type RunResult = TsxRun

/** Runs a project script (scripts/*.ts, src/server.ts) as an operator would, under tsx, with only the environment given. */
export async function runScript (script: string, args: string[], env: Record<string, string>, { timeoutMs = 120_000 } = {}): Promise<RunResult> {
  return await runTsx(script, args, { env, timeoutMs })
}

export type ServerProcess = TsxServer

/** Starts the real server (src/server.ts) on a free port and waits until it listens; `address` is http://127.0.0.1:<port>. */
export async function startServerProcess (env: Record<string, string>): Promise<ServerProcess> {
  return await startTsx('src/server.ts', [], {
    env: { ...env, PORT: '0', LOG_LEVEL: 'info' },
    ready: /Server listening at (http:\/\/127\.0\.0\.1:\d+)/
  })
}
