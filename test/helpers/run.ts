import { runTsx, startTsx, type TsxRun, type TsxServer } from '../../src/cli/tsx-child.js'

export type RunResult = TsxRun

/** Runs a project script (scripts/*.ts, src/server.ts) as an operator would, under tsx, with only the environment given. */
export async function runScript (script: string, args: string[], env: Record<string, string>, { timeoutMs = 120_000 } = {}): Promise<RunResult> {
  return await runTsx(script, args, { env, timeoutMs })
}

export type ServerProcess = TsxServer

/** The production entry point, as `npm run build` writes it. */
export const COMPILED_SERVER = 'dist/src/server.js'

/**
 * Starts the real server on a free port and waits until it listens: the
 * TypeScript under tsx, or with `compiled` the build, as plain `node`.
 * `address` is http://127.0.0.1:<port>.
 */
export async function startServerProcess (env: Record<string, string>, { compiled = false } = {}): Promise<ServerProcess> {
  return await startTsx(compiled ? COMPILED_SERVER : 'src/server.ts', [], {
    env: { ...env, PORT: '0', LOG_LEVEL: 'info' },
    ready: /Server listening at (http:\/\/127\.0\.0\.1:\d+)/
  })
}
