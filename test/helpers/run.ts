import { runTsx, startTsx, type TsxRun, type TsxServer } from '../../src/cli/tsx-child.js'
import { compiled } from './compiled.js'

export type RunResult = TsxRun

/**
 * Runs a project script (scripts/*.ts) as an operator would, with only the
 * environment given, from the suite's compiled copy (helpers/compiled.ts);
 * under tsx when it is handed a TypeScript file to load (`schools exec`).
 */
export async function runScript (script: string, args: string[], env: Record<string, string>, { timeoutMs = 120_000 } = {}): Promise<RunResult> {
  const loadsTypeScript = args.some((arg) => arg.endsWith('.ts'))
  return await runTsx(loadsTypeScript ? script : compiled(script), args, { env, timeoutMs })
}

export type ServerProcess = TsxServer

/** The production entry point, as `npm run build` writes it. */
export const COMPILED_SERVER = 'dist/src/server.js'

/**
 * Starts the real server on a free port and waits until it listens: from
 * the suite's compiled copy, or the TypeScript under tsx as `npm start`
 * runs it, or the build (`npm run build`) as plain `node`.
 * `address` is http://127.0.0.1:<port>.
 */
export async function startServerProcess (env: Record<string, string>, { from = 'copy' }: { from?: 'copy' | 'tsx' | 'build' } = {}): Promise<ServerProcess> {
  const entry = from === 'build' ? COMPILED_SERVER : from === 'tsx' ? 'src/server.ts' : compiled('src/server.ts')
  return await startTsx(entry, [], {
    env: { ...env, PORT: '0', LOG_LEVEL: 'info' },
    ready: /Server listening at (http:\/\/127\.0\.0\.1:\d+)/
  })
}
