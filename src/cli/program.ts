import type { Config } from '../config.js'
import { resolveTopology, type Topology } from '../postgres/topology.js'
import { formatUsageError, UsageError } from './command-line.js'

export interface Program {
  /**
   * Attaches to the catalog and tenant servers (starting the embedded one if
   * need be) and lets go of them when the program exits, on a signal too.
   */
  attach: (config: Config) => Promise<Topology>
  /** Runs before the topology is released: servers to close, pools to end. */
  onExit: (cleanup: () => unknown) => void
}

export interface ProgramOptions {
  /** The message for an error the program did not handle (exit 1); by default its stack. */
  failure?: (error: unknown) => string
}

/**
 * Runs a command-line program to its exit code: 0 or 1 as `main` returns,
 * 2 on a UsageError, 1 on any other error, 130 or 143 on SIGINT or SIGTERM.
 * Cleanups and the topology's release run in every case.
 */
export async function runProgram (main: (program: Program) => Promise<number>, options: ProgramOptions = {}): Promise<never> {
  const cleanups: Array<() => unknown> = []
  let exiting: Promise<never> | null = null
  const exit = async (code: number): Promise<never> => {
    exiting ??= (async () => {
      for (const cleanup of cleanups.reverse()) {
        try { await cleanup() } catch {}
      }
      process.exit(code)
    })()
    return await exiting
  }
  const program: Program = {
    attach: async (config) => {
      const topology = await resolveTopology(config)
      cleanups.unshift(() => topology.release())
      process.once('SIGINT', () => { void exit(130) })
      process.once('SIGTERM', () => { void exit(143) })
      return topology
    },
    onExit: (cleanup) => { cleanups.push(cleanup) }
  }
  let code: number
  try {
    code = await main(program)
  } catch (error) {
    code = error instanceof UsageError ? 2 : 1
    process.stderr.write(error instanceof UsageError ? formatUsageError(error) : `${(options.failure ?? describe)(error)}\n`)
  }
  return await exit(code)
}

function describe (error: unknown): string {
  return error instanceof Error ? error.stack ?? error.message : String(error)
}
