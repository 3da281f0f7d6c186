import type { Knex } from 'knex'
import { inspectCatalog, openCatalog, prepareCatalog } from '../catalog/catalog.js'
import { schoolsRepository, seedsRepository, type SchoolWithStatus } from '../catalog/schools.js'
import { DEVELOPMENT_ROLE_SECRET, type Config } from '../config.js'
import { createDatabaseSettings, freeConnections, listDatabases, type CopyMethod, type CreateStrategy } from '../postgres/admin.js'
import { createKnex, databaseMessage, databaseOf, databaseUrl } from '../postgres/connection.js'
import { appMigrations, type DirectoryMigrationSource } from '../postgres/migrations.js'
import { POOLER_ROLE, preparePoolerRole, roleKeyId } from '../postgres/roles.js'
import type { Topology } from '../postgres/topology.js'
import { runConcurrently } from './concurrency.js'
import { planSchool, recordSaysStale, resolveRollback, type PlanAction, type SchoolPlan } from './migrate-plan.js'
import { migrateSchool, schoolOutcome, type RunContext, type SchoolOutcome, type ServerHandle } from './migrate-school.js'
import { appSeeds, type SeedSource } from './seeds.js'
import { ServerWatch } from './server-watch.js'
import { describeTemplate, inspectTemplate, prepareTemplate, rollbackTemplate, TEMPLATE_DATABASE } from './template.js'

export type { SchoolOutcome } from './migrate-school.js'

/**
 * What every command that provisions schools takes from the configuration:
 * the role secret the API will log in with, and how databases are created.
 * One place, so that `schools add` and the isolation check cannot provision
 * otherwise than `npm run migrate` does.
 */
export function configuredProvisioning (config: Config): Pick<MigrateOptions, 'roleSecret' | 'createStrategy' | 'copyMethod'> {
  return { roleSecret: config.tenantRoleSecret, createStrategy: config.createDatabaseStrategy, copyMethod: config.createDatabaseCopyMethod }
}

export interface MigrateOptions {
  /** Schools migrated at once on each server; clamped to what that server has free. */
  concurrency: number
  /** Slugs to limit the run to; every school when absent. */
  only?: string[]
  /** Only the schools whose last run failed (combines with `only`). */
  failedOnly?: boolean
  /** Report what would change and change nothing. */
  dryRun?: boolean
  /**
   * Take every school back to one migration instead of migrating up (see
   * resolveRollback): `{}` undoes the newest migration where it is applied;
   * `to` names the migration to go back to, null for before the first.
   */
  rollback?: { to?: string | null }
  /** Clone new school databases from the server's template (default true). */
  useTemplate?: boolean
  /**
   * Look inside every school database even when the catalog records it as
   * current. Without it such a school is checked only for its database and
   * role still existing (one query per server for all schools).
   */
  verify?: boolean
  /** TENANT_ROLE_SECRET: derives the school roles' passwords. */
  roleSecret?: string
  /** CREATE DATABASE's STRATEGY, used on PostgreSQL 15 and later. */
  createStrategy?: CreateStrategy | null
  /** How FILE_COPY copies files on PostgreSQL 18 and later (default `clone`). */
  copyMethod?: CopyMethod
  /** The app migrations; the project's own unless a test brings others. */
  migrations?: DirectoryMigrationSource
  /**
   * Schools provisioned by this run get their seeds (`run`) or are marked as
   * never to get them (`skip`, --no-seed); a school whose seeds are pending
   * from an earlier run gets them with `run`. Absent: seeds are not this
   * run's business (the library default; the CLIs pass it).
   */
  seeding?: 'run' | 'skip'
  /** The seed modules; the project's own unless a test brings others. */
  seeds?: SeedSource
  /**
   * A server that leaves a liveness probe unanswered this long is lost: its
   * schools still to do fail, naming it (default 10 s). Migrations have no
   * time limit; only the probe does.
   */
  serverTimeoutMs?: number
  onProgress?: (progress: { done: number, total: number, failed: number }) => void
}

export interface MigrateReport {
  dryRun: boolean
  /** Where a rollback run took the schools back to (null: before the first migration); absent when migrating up. */
  rollback?: { target: string | null }
  catalog: { created: boolean, missing: boolean, migrations: string[] }
  /** Schools at once per server: as asked, and as used where a server had fewer connections free. */
  concurrency: { requested: number, used: Record<string, number> }
  /** Per server: what was done to its template, or why it could not be used. */
  templates: Record<string, string>
  /** Every school of the run, in slug order. */
  schools: SchoolOutcome[]
  /** Slugs asked for with --school that the catalog does not hold. */
  unknownSlugs: string[]
}

/** True when the run changed nothing and nothing failed. */
export function isNoop (report: MigrateReport): boolean {
  return !report.catalog.created && report.catalog.migrations.length === 0 &&
    report.schools.every((s) => s.error === null && s.database === 'existed' && s.role === 'existed' && s.migrations.length === 0 && s.seeds.length === 0)
}

export function hasFailures (report: MigrateReport): boolean {
  return report.unknownSlugs.length > 0 || report.schools.some((s) => s.error !== null)
}

/**
 * Brings the catalog, then every school database, to the latest migration
 * (or back to a rollback's target). The servers are worked in parallel,
 * each with its own bound on schools at once, so a slow or unreachable
 * server holds back only its own schools. Each school gets a plan
 * (migrate-plan.ts), then one handler carries it out; a failure is
 * recorded in its outcome and in the catalog, and never stops the others.
 */
export async function migrateSchools (topology: Topology, options: MigrateOptions): Promise<MigrateReport> {
  const dryRun = options.dryRun === true
  // One list of migrations from start to end of the run, read once.
  const source = (options.migrations ?? appMigrations).listedOnce()
  const known = await source.names()
  // Refused before anything is touched, the catalog included.
  const rollback = options.rollback === undefined ? null : resolveRollback(known, options.rollback.to)
  const report: MigrateReport = {
    dryRun,
    ...(rollback === null ? {} : { rollback: { target: rollback.target } }),
    catalog: { created: false, missing: false, migrations: [] },
    concurrency: { requested: options.concurrency, used: {} },
    templates: {},
    schools: [],
    unknownSlugs: []
  }

  if (dryRun) {
    const state = await inspectCatalog(topology.catalogUrl)
    report.catalog = { created: false, missing: !state.exists, migrations: state.pending }
    if (!state.exists) return report
  } else {
    const prepared = await prepareCatalog(topology.catalogUrl)
    report.catalog = { created: prepared.created, missing: false, migrations: prepared.applied }
  }

  const roleSecret = options.roleSecret ?? DEVELOPMENT_ROLE_SECRET
  const catalog = openCatalog(topology.catalogUrl, 2)
  const run: RunContext = {
    dryRun,
    startedAt: new Date(),
    source,
    seeds: options.seeds ?? appSeeds,
    roleSecret,
    schools: schoolsRepository(catalog),
    seedRecords: seedsRepository(catalog),
    plan: {
      servers: topology.servers,
      views: new Map(),
      catalogDatabase: databaseOf(topology.catalogUrl),
      latestMigration: known.at(-1) ?? null,
      keyId: roleKeyId(roleSecret),
      rollback,
      verify: options.verify === true,
      seeding: options.seeding ?? null
    }
  }
  try {
    const schools = await selectSchools(run, options)
    report.unknownSlugs = (options.only ?? []).filter((slug) => !schools.some((s) => s.slug === slug))
    // Noted before any server is opened, so even a run killed while a
    // server hangs leaves a record of what it had to do.
    await noteUnfinished(run, schools.filter((school) => recordSaysStale(school, run.plan)))
    const progress = progressCounter(schools.length, options.onProgress)
    const outcomes = await Promise.all([...groupByServer(schools)].map(async ([name, serverSchools]) =>
      await migrateServer(name, serverSchools, run, { topology, options, report, progress })))
    report.schools = outcomes.flat().sort((a, b) => a.slug < b.slug ? -1 : a.slug > b.slug ? 1 : 0)
  } finally {
    await catalog.destroy()
  }
  return report
}

interface ServerRun {
  topology: Topology
  options: MigrateOptions
  report: MigrateReport
  progress: (outcome: SchoolOutcome) => SchoolOutcome
}

/**
 * One server's share of the run: open it, ready its template, plan its
 * schools, note the run on those it will work, then work them. A server
 * that cannot be opened fails its own schools, each recorded with the
 * reason, and no other server's; so does one lost while it is worked.
 */
async function migrateServer (name: string, schools: SchoolWithStatus[], run: RunContext, { topology, options, report, progress }: ServerRun): Promise<SchoolOutcome[]> {
  const url = topology.servers[name]
  const concurrency = options.concurrency
  if (url === undefined) {
    // Each school is refused by its plan: the server is not configured.
    return await runConcurrently(schools, concurrency, async (school) => progress(await migrateSchool(school, planSchool(school, run.plan), run)))
  }
  const server = await readyServer(name, url, run, { topology, options })
  if (typeof server === 'string') return await serverUnavailable(schools, run, server, progress)
  try {
    run.plan.views.set(name, server)
    const withTemplate = options.useTemplate !== false
    if (withTemplate && run.plan.rollback === null) report.templates[name] = await readyTemplate(server, run)
    const used = Math.max(1, Math.min(concurrency, Math.floor(server.free / 2)))
    report.concurrency.used[name] = used
    const planned = schools.map((school) => ({ school, plan: planSchool(school, run.plan) }))
    await noteUnfinished(run, planned.filter(({ school, plan }) => WORK.has(plan.action) && !recordSaysStale(school, run.plan)).map(({ school }) => school))
    const outcomes = await workSchools(server, planned, used, run, progress)
    // The template follows a rollback of the whole fleet; one limited to
    // some schools leaves it where the others stand.
    if (run.plan.rollback !== null && !run.dryRun && withTemplate && options.only === undefined && server.watch.lost === null) {
      report.templates[name] = await rollbackTemplate(server.admin, server.url, run.source, new Set(run.plan.rollback.undo))
    }
    return outcomes
  } finally {
    await closeServer(server)
  }
}

/**
 * The server's schools, `limit` at once. Once its watch has found it lost,
 * the schools left that need it fail with the watch's reason, untried, and
 * are recorded in one statement.
 */
async function workSchools (server: ServerHandle, planned: Array<{ school: SchoolWithStatus, plan: SchoolPlan }>, limit: number, run: RunContext, progress: ServerRun['progress']): Promise<SchoolOutcome[]> {
  const untried: SchoolWithStatus[] = []
  const outcomes = await runConcurrently(planned, limit, async ({ school, plan }) => {
    const lost = server.watch.lost
    if (lost === null || !needsServer(plan)) return progress(await migrateSchool(school, plan, run))
    untried.push(school)
    return progress({ ...schoolOutcome(school, { action: 'refuse', reason: lost }), error: lost })
  })
  const lost = server.watch.lost
  if (lost !== null && untried.length > 0 && !run.dryRun) await run.schools.recordFailures(untried.map((school) => school.id), lost)
  return outcomes
}

/** A school the catalog records as done, with no seeds to run, is not even connected to. */
function needsServer (plan: SchoolPlan): boolean {
  return plan.action !== 'skip' || plan.seeds !== 'none'
}

/** The run's schools by server, each in the run's (slug) order. */
function groupByServer (schools: SchoolWithStatus[]): Map<string, SchoolWithStatus[]> {
  const byServer = new Map<string, SchoolWithStatus[]>()
  for (const school of schools) {
    const list = byServer.get(school.server)
    if (list === undefined) byServer.set(school.server, [school])
    else list.push(school)
  }
  return byServer
}

/** The actions that change a school; its early note missed those whose record looked current. */
const WORK: ReadonlySet<PlanAction> = new Set(['clone', 'create', 'migrate'])

/**
 * Before a school is worked, the catalog notes that this run has not
 * finished it; finishing it replaces the note. So a run that stops early
 * (killed, a lost server, a lost catalog) leaves its unfinished schools
 * recorded as failed, for `--failed` to find. A dry run changes nothing,
 * and a rollback needs no note: it undoes only what is still applied, so
 * running it again finishes it.
 */
async function noteUnfinished (run: RunContext, schools: SchoolWithStatus[]): Promise<void> {
  if (run.dryRun || run.plan.rollback !== null || schools.length === 0) return
  await run.schools.recordFailures(schools.map((school) => school.id),
    `not finished by the migrate run started ${run.startedAt.toISOString()} (stopped early, or still running)`)
}

/** The server opened and ready for its schools, or why it is not. */
async function readyServer (name: string, url: string, run: RunContext, { topology, options }: Pick<ServerRun, 'topology' | 'options'>): Promise<ServerHandle | string> {
  let server: ServerHandle
  try {
    server = await openServer(name, url, options.concurrency, options)
  } catch (error) {
    return error instanceof ServerLost ? error.message : `server "${name}" could not be reached: ${databaseMessage(error)}`
  }
  if (run.dryRun) return server
  try {
    await preparePoolerRole(server.admin, topology.poolers?.[name] !== undefined, run.roleSecret)
    return server
  } catch (error) {
    const lost = server.watch.lost
    await closeServer(server)
    return lost ?? `server "${name}": the pooler's role ${POOLER_ROLE} could not be prepared: ${databaseMessage(error)}`
  }
}

async function closeServer (server: ServerHandle): Promise<void> {
  await server.watch.close()
  await server.admin.destroy()
}

/** Every school of an unusable server fails with the reason, recorded in the catalog. */
async function serverUnavailable (schools: SchoolWithStatus[], run: RunContext, reason: string, progress: ServerRun['progress']): Promise<SchoolOutcome[]> {
  const outcomes = schools.map((school) => progress({ ...schoolOutcome(school, { action: 'refuse', reason }), error: reason }))
  if (!run.dryRun) await run.schools.recordFailures(schools.map((school) => school.id), reason)
  return outcomes
}

/** Counts outcomes as they come, across servers, for the progress line. */
function progressCounter (total: number, onProgress: MigrateOptions['onProgress']): ServerRun['progress'] {
  let done = 0
  let failed = 0
  return (outcome) => {
    done++
    if (outcome.error !== null) failed++
    onProgress?.({ done, total, failed })
    return outcome
  }
}

async function selectSchools (run: RunContext, options: MigrateOptions): Promise<SchoolWithStatus[]> {
  let only = options.only
  if (options.failedOnly === true) {
    const failed = await run.schools.failedSlugs()
    only = only === undefined ? failed : only.filter((slug) => failed.includes(slug))
  }
  return await run.schools.listWithStatus(only === undefined ? {} : { slugs: only })
}

const SERVER_TIMEOUT_MS = 10_000

/** The server was lost while it was being opened; the message names it. */
class ServerLost extends Error {
  override name = 'ServerLost'
}

/** The server's watch first, so that a server hanging while it is read is cut off too. */
async function openServer (name: string, url: string, concurrency: number, options: MigrateOptions): Promise<ServerHandle> {
  const watch = await ServerWatch.open(name, url, { timeoutMs: options.serverTimeoutMs ?? SERVER_TIMEOUT_MS })
  let admin: Knex | null = null
  try {
    const version = await watch.serverVersion()
    admin = createKnex(databaseUrl(url, 'postgres'), {
      // CREATE DATABASE copies a template and takes a lock on it; a few at a
      // time is as fast as many and keeps connections for the migrations.
      max: Math.min(concurrency, 4),
      applicationName: 'school-lunch:migrate',
      settings: createDatabaseSettings(version, options.copyMethod ?? 'clone')
    })
    const roles = (await admin.raw<{ rows: Array<{ rolname: string }> }>('SELECT rolname FROM pg_roles')).rows.map((r) => r.rolname)
    const strategy = options.createStrategy ?? null
    return {
      url,
      admin,
      watch,
      databases: await listDatabases(admin),
      roles: new Set(roles),
      free: await freeConnections(admin),
      cloneFromTemplate: false,
      strategy: strategy !== null && version >= 150000 ? strategy : undefined
    }
  } catch (error) {
    const lost = watch.lost
    await watch.close()
    await admin?.destroy()
    throw lost === null ? error : new ServerLost(lost)
  }
}

/**
 * A real run creates, repairs or migrates the template before any school
 * is planned. A dry run only reads its state and plans clones, as a real
 * run would once the template is ready.
 */
async function readyTemplate (server: ServerHandle, run: RunContext): Promise<string> {
  if (run.dryRun) {
    server.cloneFromTemplate = true
    return await inspectTemplate(server.admin, server.url, run.source).then(describeTemplate, (error) => `unreadable: ${databaseMessage(error)}`)
  }
  const prepared = await prepareTemplate(server.admin, server.url, run.source)
  server.cloneFromTemplate = prepared.ready
  server.databases.add(TEMPLATE_DATABASE)
  return prepared.summary
}
