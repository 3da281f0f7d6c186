import { parseArgs } from 'node:util'
import { parseWholeNumber, wholeNumberProblem } from './whole-number.js'

/** A bad command line: the program exits 2 and prints `usage`, when there is one. */
export class UsageError extends Error {
  constructor (message: string, readonly usage: string | null = null) {
    super(message)
    this.name = 'UsageError'
  }
}

type OptionSpec =
  | { type: 'string', multiple?: false, short?: string, default?: string }
  | { type: 'string', multiple: true, short?: string, default?: string[] }
  | { type: 'boolean', multiple?: false, short?: string, default?: boolean }
type OptionsSpec = Record<string, OptionSpec>

const HELP = { help: { type: 'boolean' } } as const

export interface CommandLineSpec<O extends OptionsSpec, P extends boolean> {
  /** Printed by --help, and after every usage error. */
  usage: string
  options: O
  /** Whether the command takes positional arguments (default: none). */
  positionals?: P
  /** The arguments to parse (default: the process's). */
  args?: string[]
}

/** What parseArgs infers for these options, --help included. */
export type ParsedCommandLine<O extends OptionsSpec, P extends boolean> =
  ReturnType<typeof parseArgs<{ options: O & typeof HELP, strict: true, allowPositionals: P }>>

/**
 * Parses a command line strictly against `spec`: an unknown option or a
 * missing value throws a UsageError; --help prints the usage and exits 0.
 */
export function parseCommandLine<const O extends OptionsSpec, const P extends boolean = false> (spec: CommandLineSpec<O, P>): ParsedCommandLine<O, P> {
  let parsed
  try {
    parsed = parseArgs({
      args: spec.args ?? process.argv.slice(2),
      options: { ...spec.options, ...HELP },
      strict: true,
      allowPositionals: spec.positionals ?? false
    })
  } catch (error) {
    throw new UsageError((error as Error).message, spec.usage)
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    process.stdout.write(`${spec.usage}\n`)
    process.exit(0)
  }
  return parsed as ParsedCommandLine<O, P>
}

/** A whole-number option: `fallback` when absent, a UsageError when out of range. */
export function wholeNumberOption (raw: string | undefined, option: string, range: { min: number, max: number, fallback: number }, usage: string): number {
  if (raw === undefined) return range.fallback
  const value = parseWholeNumber(raw, range.min, range.max)
  if (value === null) throw new UsageError(wholeNumberProblem(`--${option}`, raw, range.min, range.max), usage)
  return value
}

/** The usage error as the operator reads it: the problem, then how to call the command. */
export function formatUsageError (error: UsageError): string {
  return `${error.message}\n${error.usage === null ? '' : `\n${error.usage}\n`}`
}

/**
 * The subcommand named by the first argument (`schools add …`), and the
 * arguments after it; `--help`, `-h` or `help` alone print the usage and exit 0.
 */
export function parseSubcommand<const N extends string> (usage: string, names: readonly N[], args = process.argv.slice(2)): { name: N, args: string[] } {
  const [name, ...rest] = args
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage}\n`)
    process.exit(0)
  }
  if (name === undefined) throw new UsageError('No command given.', usage)
  if (!(names as readonly string[]).includes(name)) throw new UsageError(`Unknown command "${name}".`, usage)
  return { name: name as N, args: rest }
}
