/*
 * npm run schools -- <command> [options]
 *
 * One school at a time (add, suspend, resume, drop, move, backup, restore),
 * the fleet at a glance (list), and a task script run on every school (exec). Exit codes: 0 done,
 * 1 failed (or refused), 2 bad command line.
 */
import type { MigrationState, SchoolStatus } from '../src/catalog/schools.js'
import { parseCommandLine, parseSubcommand, UsageError, wholeNumberOption, type ParsedCommandLine } from '../src/cli/command-line.js'
import { runProgram } from '../src/cli/program.js'
import { loadConfigOrExit, type Config } from '../src/config.js'
import { fleetStatus, formatFleetStatus } from '../src/fleet/fleet-status.js'
import { SchoolAdminError, setSchoolStatus } from '../src/fleet/school-admin.js'
import { databaseOf } from '../src/postgres/connection.js'
import { add, drop, errorText, exec, withCatalog, type Context } from './schools/commands.js'
import { backup, restore } from './schools/backup-commands.js'
import { move } from './schools/move-command.js'
import { COMMAND_NAMES, COMMAND_USAGE, USAGE, type CommandName } from './schools/usage.js'

/** A parsed command, ready to run once the databases are reached; resolves to the exit code. */
type Run = (context: Context) => Promise<number>

/** One parser for all commands; each accepts only its own options. */
const OPTIONS = {
  status: { type: 'string' },
  server: { type: 'string' },
  state: { type: 'string' },
  name: { type: 'string' },
  database: { type: 'string' },
  'no-migrate': { type: 'boolean' },
  'no-seed': { type: 'boolean' },
  yes: { type: 'boolean' },
  school: { type: 'string', multiple: true },
  concurrency: { type: 'string' },
  'include-suspended': { type: 'boolean' },
  to: { type: 'string' },
  'keep-source': { type: 'boolean' },
  out: { type: 'string' },
  as: { type: 'string' },
  replace: { type: 'boolean' }
} as const
type Values = ParsedCommandLine<typeof OPTIONS, true>['values']

const ALLOWED: Record<CommandName, Array<keyof typeof OPTIONS>> = {
  list: ['status', 'server', 'state'],
  add: ['name', 'server', 'database', 'no-migrate', 'no-seed'],
  suspend: [],
  resume: [],
  drop: ['yes'],
  exec: ['school', 'concurrency', 'include-suspended'],
  move: ['to', 'keep-source'],
  backup: ['out'],
  restore: ['as', 'server', 'name', 'database', 'replace']
}

function parseCommand (name: CommandName, args: string[], config: Config): Run {
  const usage = COMMAND_USAGE[name]
  const { values, positionals } = parseCommandLine({ usage, options: OPTIONS, positionals: true, args })
  for (const option of Object.keys(values)) {
    if (option !== 'help' && !(ALLOWED[name] as string[]).includes(option)) throw new UsageError(`${name} takes no --${option}`, usage)
  }
  const expected = name === 'list' ? 0 : 1
  if (positionals.length !== expected) {
    const what = name === 'exec' ? 'one task script' : name === 'restore' ? 'one backup file' : expected === 0 ? 'no arguments' : 'one school slug'
    throw new UsageError(`${name} takes ${what} (got ${positionals.length === 0 ? 'none' : positionals.join(' ')})`, usage)
  }
  return commandRun(name, values, positionals[0] ?? '', config)
}

function commandRun (name: CommandName, values: Values, target: string, config: Config): Run {
  const usage = COMMAND_USAGE[name]
  switch (name) {
    case 'list': {
      const filter = {
        status: oneOf<SchoolStatus>(values.status, '--status', ['active', 'suspended'], usage),
        server: values.server,
        state: oneOf<MigrationState>(values.state, '--state', ['current', 'behind', 'failed', 'never'], usage)
      }
      return async ({ topology }) => await withCatalog(topology, async (catalog) => {
        process.stdout.write(`${formatFleetStatus(await fleetStatus(catalog, filter))}\n`)
        return 0
      })
    }
    case 'add': {
      if (values.name === undefined) throw new UsageError('add needs --name "<the school\'s name>"', usage)
      const input = { slug: target, name: values.name, server: values.server, databaseName: values.database }
      return async (context) => await add(context, input, values['no-migrate'] !== true, values['no-seed'] !== true)
    }
    case 'suspend':
    case 'resume':
      return async (context) => await setStatus(context, target, name === 'suspend' ? 'suspended' : 'active')
    case 'drop':
      return async (context) => await drop(context, target, values.yes === true)
    case 'exec': {
      const concurrency = wholeNumberOption(values.concurrency, 'concurrency', { min: 1, max: 256, fallback: config.migrateConcurrency }, usage)
      const options = { concurrency, only: values.school, includeSuspended: values['include-suspended'] === true }
      return async (context) => await exec(context, target, options)
    }
    case 'move': {
      const to = values.to
      if (to === undefined) throw new UsageError('move needs --to <server>', usage)
      return async (context) => await move(context, target, to, values['keep-source'] === true)
    }
    case 'backup':
      return async (context) => await backup(context, target, values.out)
    case 'restore': {
      const as = values.as
      if (as === undefined) throw new UsageError('restore needs --as <slug>: the school it becomes', usage)
      const input = { file: target, as, server: values.server, name: values.name, databaseName: values.database, replace: values.replace === true }
      return async (context) => await restore(context, input)
    }
  }
}

function oneOf<T extends string> (value: string | undefined, option: string, allowed: readonly T[], usage: string): T | undefined {
  if (value === undefined || (allowed as readonly string[]).includes(value)) return value as T | undefined
  throw new UsageError(`${option} must be one of ${allowed.join(', ')} (got "${value}")`, usage)
}

async function setStatus ({ topology, config: { catalogCacheTtlMs } }: Context, slug: string, status: SchoolStatus): Promise<number> {
  return await withCatalog(topology, async (catalog) => {
    const { changed } = await setSchoolStatus(catalog, slug, status)
    process.stdout.write(!changed
      ? `School ${slug} was already ${status}; nothing changed.\n`
      : `School ${slug} is now ${status}. Running API processes ${status === 'suspended' ? 'refuse' : 'serve'} it ` +
        `as soon as the catalog notifies them, at the latest within ${catalogCacheTtlMs / 1000} s.\n`)
    return 0
  })
}

/** Errors an operator can act on from their message alone; anything else is a bug and keeps its stack. */
function isExpected (error: unknown): error is Error {
  return error instanceof SchoolAdminError || (error instanceof Error && typeof (error as { code?: unknown }).code === 'string')
}

/** What the operator reads for an error: a known one in its own words, a bug with its stack. */
function describeFailure (name: string, error: unknown, catalogUrl: string): string {
  if (!isExpected(error)) return `${name} failed unexpectedly:\n${(error as Error).stack ?? String(error)}`
  const missingCatalog = (error as { code?: string }).code === '3D000' && error.message.includes(`"${databaseOf(catalogUrl)}"`)
  return `${errorText(error)}${missingCatalog ? '\nThe catalog does not exist yet: add a school, or run npm run migrate.' : ''}`
}

await runProgram(async (program) => {
  const { name, args } = parseSubcommand(USAGE, COMMAND_NAMES)
  const config = loadConfigOrExit()
  const run = parseCommand(name, args, config)
  const topology = await program.attach(config)
  try {
    return await run({ config, topology })
  } catch (error) {
    if (error instanceof UsageError) throw error
    process.stderr.write(`${describeFailure(name, error, topology.catalogUrl)}\n`)
    return 1
  }
})
