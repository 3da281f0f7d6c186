/*
 * npm run schools -- <command> [options]
 *
 * One school at a time (add, suspend, resume, drop), the fleet at a glance
 * (list), and a task script run on every school (exec). Exit codes: 0 done,
 * 1 failed (or refused), 2 bad command line.
 */
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { Knex } from 'knex'
import { prepareCatalog } from '../src/catalog/catalog.js'
import type { MigrationState, SchoolStatus } from '../src/catalog/schools.js'
import { loadConfigOrExit, type Config } from '../src/config.js'
import { fleetStatus, formatFleetStatus } from '../src/fleet/fleet-status.js'
import { forEachSchool, silentKnexLog, type SchoolResult, type SchoolTask } from '../src/fleet/for-each-school.js'
import { migrateSchools } from '../src/fleet/migrate-schools.js'
import {
  addSchool, checkNewSchool, dropSchool, InvalidSchoolInput, planDrop, SCHOOL_NAME_MAX, SchoolAdminError, setSchoolStatus
} from '../src/fleet/school-admin.js'
import { formatTable } from '../src/fleet/table.js'
import { createKnex, databaseOf } from '../src/postgres/connection.js'
import { resolveTopology, type Topology } from '../src/postgres/topology.js'

const USAGE = `Usage: npm run schools -- <command> [options]

Commands:
  list [--status S] [--server NAME] [--state S]    the schools: status, server, migration state
  add <slug> --name "<name>" [--server NAME] [--database NAME] [--no-migrate]
                                                   add a school and provision its database
  suspend <slug>                                   stop serving a school
  resume <slug>                                    serve it again
  drop <slug> --yes                                remove a suspended school: database, role, catalog row
  exec <script.ts> [--school <slug>]... [--concurrency N] [--include-suspended]
                                                   run a task script on every school

npm run schools -- <command> --help describes one command.`

const COMMAND_USAGE = {
  list: `Usage: npm run schools -- list [--status active|suspended] [--server NAME] [--state current|behind|failed|never]

Every school in the catalog with its server, status and migration state as
the last npm run migrate recorded it, then the count per state.

  --status <status>   only active, or only suspended, schools
  --server <name>     only the schools on this server
  --state <state>     current: at the latest app migration; behind: one is missing;
                      failed: the last migrate failed; never: not migrated yet`,

  add: `Usage: npm run schools -- add <slug> --name "<name>" [--server NAME] [--database NAME] [--no-migrate]

Adds the school to the catalog (created when missing), then creates its
database and role and runs the app migrations, for this school only.

  --name <name>       the school's name, 1 to ${SCHOOL_NAME_MAX} characters (required)
  --server <name>     a server of TENANT_SERVERS. Without it the school goes to the
                      configured server holding the fewest schools (of any status);
                      a tie goes to the server listed first in TENANT_SERVERS
  --database <name>   its database (default: school_<slug>, with - turned into _)
  --no-migrate        only add the catalog row; npm run migrate provisions it later

The slug and the database name may hold lowercase letters, digits, _ and -,
at most 63 characters.`,

  suspend: `Usage: npm run schools -- suspend <slug>

Marks the school suspended: the API refuses its requests (403 SCHOOL_SUSPENDED).
Running API processes hear of it through the catalog's notifications, and at
the latest when their catalog cache entry expires (CATALOG_CACHE_TTL_MS).`,

  resume: `Usage: npm run schools -- resume <slug>

Marks a suspended school active again; the API serves it once its processes
hear of it (at once, or when their catalog cache entry expires).`,

  drop: `Usage: npm run schools -- drop <slug> --yes

Removes a school for good: its database (open connections are ended), its
login role and its catalog row. Only a suspended school can be dropped.
Without --yes it only says what it would remove.`,

  exec: `Usage: npm run schools -- exec <script.ts> [--school <slug>]... [--concurrency N] [--include-suspended]

Runs a task script on every active school and prints one line per school.
The script (a path relative to the current directory) exports a default
async function ({ school, db }); db is a connection to the school's database
as the school's own role. See scripts/tasks/ for examples. Exit code 1 when
any school failed.

  --school <slug>       only this school (repeatable)
  --concurrency <n>     schools at once (default MIGRATE_CONCURRENCY, 8)
  --include-suspended   run on suspended schools too (they are skipped by default)`
} as const

type CommandName = keyof typeof COMMAND_USAGE

/** A bad command line: exit 2, with the usage that says how to fix it. */
class UsageError extends Error {
  constructor (message: string, readonly usage: string | null = null) {
    super(message)
  }
}

interface Context {
  config: Config
  topology: Topology
}

/** A parsed command, ready to run once the databases are reached; resolves to the exit code. */
type Run = (context: Context) => Promise<number>

function isCommand (name: string): name is CommandName {
  return Object.hasOwn(COMMAND_USAGE, name)
}

function parseCommand (name: CommandName, args: string[], config: Config): Run {
  const usage = COMMAND_USAGE[name]
  let parsed
  try {
    parsed = parseArgs({
      args,
      options: {
        help: { type: 'boolean' },
        status: { type: 'string' },
        server: { type: 'string' },
        state: { type: 'string' },
        name: { type: 'string' },
        database: { type: 'string' },
        'no-migrate': { type: 'boolean' },
        yes: { type: 'boolean' },
        school: { type: 'string', multiple: true },
        concurrency: { type: 'string' },
        'include-suspended': { type: 'boolean' }
      },
      strict: true,
      allowPositionals: true
    })
  } catch (error) {
    throw new UsageError((error as Error).message, usage)
  }
  const { values, positionals } = parsed
  if (values.help === true) {
    process.stdout.write(`${usage}\n`)
    process.exit(0)
  }
  // One parser for all commands; each accepts only its own options.
  const allowed: Record<CommandName, string[]> = {
    list: ['status', 'server', 'state'],
    add: ['name', 'server', 'database', 'no-migrate'],
    suspend: [],
    resume: [],
    drop: ['yes'],
    exec: ['school', 'concurrency', 'include-suspended']
  }
  for (const option of Object.keys(values)) {
    if (option !== 'help' && !allowed[name].includes(option)) throw new UsageError(`${name} takes no --${option}`, usage)
  }
  const expected = name === 'list' ? 0 : 1
  if (positionals.length !== expected) {
    const what = name === 'exec' ? 'one task script' : expected === 0 ? 'no arguments' : 'one school slug'
    throw new UsageError(`${name} takes ${what} (got ${positionals.length === 0 ? 'none' : positionals.join(' ')})`, usage)
  }
  const target = positionals[0] ?? ''

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
      return async (context) => await add(context, input, values['no-migrate'] !== true)
    }
    case 'suspend':
    case 'resume': {
      const status: SchoolStatus = name === 'suspend' ? 'suspended' : 'active'
      return async ({ topology, config: { catalogCacheTtlMs } }) => await withCatalog(topology, async (catalog) => {
        const { changed } = await setSchoolStatus(catalog, target, status)
        process.stdout.write(!changed
          ? `School ${target} was already ${status}; nothing changed.\n`
          : `School ${target} is now ${status}. Running API processes ${status === 'suspended' ? 'refuse' : 'serve'} it ` +
            `as soon as the catalog notifies them, at the latest within ${catalogCacheTtlMs / 1000} s.\n`)
        return 0
      })
    }
    case 'drop':
      return async (context) => await drop(context, target, values.yes === true)
    case 'exec': {
      let concurrency = config.migrateConcurrency
      if (values.concurrency !== undefined) {
        concurrency = Number(values.concurrency)
        if (!/^\d+$/.test(values.concurrency) || concurrency < 1 || concurrency > 256) {
          throw new UsageError(`--concurrency must be a whole number from 1 to 256 (got "${values.concurrency}")`, usage)
        }
      }
      const options = { concurrency, only: values.school, includeSuspended: values['include-suspended'] === true }
      return async (context) => await exec(context, target, options)
    }
  }
}

function oneOf<T extends string> (value: string | undefined, option: string, allowed: readonly T[], usage: string): T | undefined {
  if (value === undefined || (allowed as readonly string[]).includes(value)) return value as T | undefined
  throw new UsageError(`${option} must be one of ${allowed.join(', ')} (got "${value}")`, usage)
}

async function withCatalog<T> (topology: Topology, fn: (catalog: Knex) => Promise<T>): Promise<T> {
  const catalog = createKnex(topology.catalogUrl, { max: 1, applicationName: 'school-lunch:schools', log: silentKnexLog })
  try {
    return await fn(catalog)
  } finally {
    await catalog.destroy()
  }
}

async function add ({ config, topology }: Context, input: { slug: string, name: string, server?: string, databaseName?: string }, migrate: boolean): Promise<number> {
  const servers = Object.keys(topology.servers)
  try {
    // Before anything is created: a bad name or server is a bad command line.
    checkNewSchool(input, servers)
  } catch (error) {
    if (error instanceof InvalidSchoolInput) throw new UsageError(error.message, COMMAND_USAGE.add)
    throw error
  }
  // Onboarding the first school on a fresh server finds no catalog yet.
  await prepareCatalog(topology.catalogUrl)
  const school = await withCatalog(topology, async (catalog) => await addSchool(catalog, servers, input))
  process.stdout.write(`Added school ${school.slug} (${school.name}) on server ${school.server}, database ${school.databaseName}.\n`)
  if (!migrate) {
    process.stdout.write(`Not provisioned (--no-migrate): npm run migrate -- --school ${school.slug} creates its database and role.\n`)
    return 0
  }
  const report = await migrateSchools(topology, { concurrency: 1, only: [school.slug], roleSecret: config.tenantRoleSecret })
  const outcome = report.schools[0]
  if (outcome === undefined) throw new SchoolAdminError(`School "${school.slug}" left the catalog before it could be provisioned`)
  if (outcome.error !== null) {
    process.stderr.write(`Provisioning failed: ${outcome.error}\n` +
      `The school is in the catalog; once the cause is fixed, run: npm run migrate -- --school ${school.slug}\n`)
    return 1
  }
  const database = outcome.database === 'cloned' ? 'created from the template' : outcome.database
  // A clone of the template comes with every migration already applied.
  const migrations = outcome.migrations.length === 0 ? 'already at the latest migration' : `${outcome.migrations.length} migration(s) applied`
  process.stdout.write(`Provisioned: database ${database}, role ${outcome.role}, ${migrations}.\n`)
  return 0
}

async function drop ({ topology }: Context, slug: string, confirmed: boolean): Promise<number> {
  return await withCatalog(topology, async (catalog) => {
    if (!confirmed) {
      const { school, role } = await planDrop(catalog, topology, slug)
      throw new UsageError(`Refusing to drop without --yes. It would remove, for good:\n` +
        `  database ${school.databaseName} on server ${school.server} (all its data)\n` +
        `  role ${role}\n` +
        `  the catalog row of school ${slug} (${school.name})\n` +
        (school.status === 'active' ? `The school is active: suspend it first (npm run schools -- suspend ${slug}).\n` : '') +
        `Run again with --yes to drop it.`)
    }
    const outcome = await dropSchool(catalog, topology, slug)
    process.stdout.write(`Dropped school ${slug}:\n` +
      `  database ${outcome.school.databaseName} on server ${outcome.school.server}: ${outcome.databaseFound ? 'dropped' : 'was not there'}\n` +
      `  role ${outcome.role}: ${outcome.roleFound ? 'dropped' : 'was not there'}\n` +
      '  catalog row: removed\n')
    return 0
  })
}

async function exec ({ config, topology }: Context, script: string, options: { concurrency: number, only: string[] | undefined, includeSuspended: boolean }): Promise<number> {
  // npm run moves to the project root; INIT_CWD is where the operator typed the command.
  const file = path.resolve(process.env.INIT_CWD ?? process.cwd(), script)
  if (!fs.existsSync(file)) throw new UsageError(`No task script at ${file}`, COMMAND_USAGE.exec)
  let task: unknown
  try {
    task = (await import(pathToFileURL(file).href) as { default?: unknown }).default
  } catch (error) {
    throw new SchoolAdminError(`Could not load ${script}: ${(error as Error).message}`)
  }
  if (typeof task !== 'function') {
    throw new UsageError(`${script} is not a task script: it must export a default async function ({ school, db })`, COMMAND_USAGE.exec)
  }

  const showProgress = process.stderr.isTTY
  const results = await forEachSchool(
    { catalogUrl: topology.catalogUrl, servers: topology.servers, roleSecret: config.tenantRoleSecret },
    task as SchoolTask,
    {
      concurrency: options.concurrency,
      only: options.only,
      includeSuspended: options.includeSuspended,
      onProgress: showProgress
        ? ({ done, total, failed }) => process.stderr.write(`\rSchools: ${done}/${total} done${failed > 0 ? `, ${failed} failed` : ''}   `)
        : undefined
    })
  if (showProgress && results.length > 0) process.stderr.write('\n')
  if (results.length === 0) {
    process.stdout.write(`No ${options.includeSuspended ? '' : 'active '}schools in the catalog; nothing ran.\n`)
    return 0
  }
  const failed = results.filter((r) => !r.ok).length
  process.stdout.write(`${formatTable(['school', 'result', 'details'], results.map((r) => [r.slug, r.ok ? 'ok' : 'FAILED', details(r)]))}\n\n` +
    `${results.length} school(s): ${results.length - failed} ok, ${failed} failed.\n`)
  return failed > 0 ? 1 : 0
}

/** One line of a task's result or error, short enough for a table. */
function details (result: SchoolResult<unknown>): string {
  let text: string
  if (!result.ok) {
    text = errorText(result.error)
  } else if (typeof result.value === 'string') {
    text = result.value
  } else {
    try {
      text = JSON.stringify(result.value) ?? String(result.value)
    } catch {
      text = String(result.value)
    }
  }
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > 120 ? `${line.slice(0, 119)}…` : line
}

/** An error's message; knex puts the failing SQL before the database's own words, which are enough. */
function errorText (error: Error): string {
  return typeof (error as { code?: unknown }).code === 'string' ? error.message.replace(/^[\s\S]*? - /, '') : error.message
}

/** Errors an operator can act on from their message alone; anything else is a bug and keeps its stack. */
function isExpected (error: unknown): error is Error {
  return error instanceof SchoolAdminError || (error instanceof Error && typeof (error as { code?: unknown }).code === 'string')
}

async function main (): Promise<void> {
  const [name, ...args] = process.argv.slice(2)
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`)
    process.exit(0)
  }
  if (name === undefined || !isCommand(name)) {
    process.stderr.write(`${name === undefined ? 'No command given.' : `Unknown command "${name}".`}\n\n${USAGE}\n`)
    process.exit(2)
  }
  const config = loadConfigOrExit()
  let run: Run
  try {
    run = parseCommand(name, args, config)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    process.stderr.write(`${error.message}\n\n${error.usage ?? USAGE}\n`)
    process.exit(2)
  }

  const topology = await resolveTopology(config)
  // Annotated so the compiler knows the code after exit() does not run.
  const exit: (code: number) => never = (code) => {
    topology.release()
    process.exit(code)
  }
  process.once('SIGINT', () => exit(130))
  process.once('SIGTERM', () => exit(143))
  try {
    exit(await run({ config, topology }))
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n${error.usage === null ? '' : `\n${error.usage}\n`}`)
      exit(2)
    }
    if (!isExpected(error)) {
      process.stderr.write(`${name} failed unexpectedly:\n${(error as Error).stack ?? String(error)}\n`)
      exit(1)
    }
    const missingCatalog = (error as { code?: string }).code === '3D000' && error.message.includes(`"${databaseOf(topology.catalogUrl)}"`)
    process.stderr.write(`${errorText(error)}\n${missingCatalog ? 'The catalog does not exist yet: add a school, or run npm run migrate.\n' : ''}`)
    exit(1)
  }
}

await main()
