import { inspectCatalog, openCatalog, prepareCatalog } from '../catalog/catalog.js'
import { schoolsRepository, seedsRepository, type SchoolWithStatus } from '../catalog/schools.js'
import { DEVELOPMENT_ROLE_SECRET } from '../config.js'
import { freeConnections, listDatabases, type CreateStrategy } from '../postgres/admin.js'
import { createKnex, databaseMessage, databaseOf, databaseUrl } from '../postgres/connection.js'
import { appMigrations, type DirectoryMigrationSource } from '../postgres/migrations.js'
import { roleKeyId } from '../postgres/roles.js'
import type { Topology } from '../postgres/topology.js'
import { runConcurrently } from './concurrency.js'
import { migrateSchool, type RunContext, type SchoolOutcome, type ServerHandle } from './migrate-school.js'
import { appSeeds, type SeedSource } from './seeds.js'
import { describeTemplate, inspectTemplate, prepareTemplate, rollbackTemplate, TEMPLATE_DATABASE } from './template.js'

export type { SchoolOutcome } from './migrate-school.js'

export interface MigrateOptions {
  /** Schools migrated at once; clamped to what the servers have free. */
  concurrency: number
  /** Slugs to limit the run to; every school when absent. */
  only?: string[]
  /** Only the schools whose last run failed (combines with `only`). */
  failedOnly?: boolean
  /** Report what would change and change nothing. */
  dryRun?: boolean
  /** Undo the last batch of app migrations instead of migrating up. */
  rollback?: boolean
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
  onProgress?: (progress: { done: number, total: number, failed: number }) => void
}

export interface MigrateReport {
  dryRun: boolean
  rollback: boolean
  catalog: { created: boolean, missing: boolean, migrations: string[] }
  concurrency: { requested: number, used: number }
  /** Per server: what was done to its template, or why it could not be used. */
  templates: Record<string, string>
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
 * Brings the catalog, then every school database, to the latest migration.
 * Each school gets a plan (migrate-plan.ts), then one handler carries it
 * out; a failure is recorded in its outcome and in the catalog, and never
 * stops the others.
 */
export async function migrateSchools (topology: Topology, options: MigrateOptions): Promise<MigrateReport> {
  const dryRun = options.dryRun === true
  const rollback = options.rollback === true
  const report: MigrateReport = {
    dryRun,
    rollback,
    catalog: { created: false, missing: false, migrations: [] },
    concurrency: { requested: options.concurrency, used: options.concurrency },
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
  const source = options.migrations ?? appMigrations
  const catalog = openCatalog(topology.catalogUrl, 2)
  const handles = new Map<string, ServerHandle>()
  const run: RunContext = {
    dryRun,
    source,
    seeds: options.seeds ?? appSeeds,
    roleSecret,
    schools: schoolsRepository(catalog),
    seedRecords: seedsRepository(catalog),
    plan: {
      servers: topology.servers,
      views: handles,
      catalogDatabase: databaseOf(topology.catalogUrl),
      latestMigration: (await source.names()).at(-1) ?? null,
      keyId: roleKeyId(roleSecret),
      rollback,
      verify: options.verify === true,
      seeding: options.seeding ?? null
    }
  }
  try {
    const schools = await selectSchools(run, options)
    report.unknownSlugs = (options.only ?? []).filter((slug) => !schools.some((s) => s.slug === slug))
    for (const name of new Set(schools.map((s) => s.server))) {
      const url = topology.servers[name]
      if (url === undefined) continue
      const server = await openServer(url, options.concurrency, options.createStrategy ?? null)
      handles.set(name, server)
      if (options.useTemplate !== false && !rollback) report.templates[name] = await readyTemplate(server, run)
    }
    report.concurrency.used = Math.max(1, Math.min(options.concurrency, ...[...handles.values()].map((s) => Math.floor(s.free / 2))))

    let done = 0
    let failed = 0
    report.schools = await runConcurrently(schools, report.concurrency.used, async (school) => {
      const outcome = await migrateSchool(school, run)
      done++
      if (outcome.error !== null) failed++
      options.onProgress?.({ done, total: schools.length, failed })
      return outcome
    })
    if (rollback && !dryRun) await rollbackTemplates(run, report)
  } finally {
    await Promise.all([...handles.values()].map(async (s) => await s.admin.destroy()))
    await catalog.destroy()
  }
  return report
}

async function selectSchools (run: RunContext, options: MigrateOptions): Promise<SchoolWithStatus[]> {
  let only = options.only
  if (options.failedOnly === true) {
    const failed = await run.schools.failedSlugs()
    only = only === undefined ? failed : only.filter((slug) => failed.includes(slug))
  }
  return await run.schools.listWithStatus(only === undefined ? {} : { slugs: only })
}

async function openServer (url: string, concurrency: number, strategy: CreateStrategy | null): Promise<ServerHandle> {
  // CREATE DATABASE copies a template and takes a lock on it; a few at a
  // time is as fast as many and keeps connections for the migrations.
  const admin = createKnex(databaseUrl(url, 'postgres'), { max: Math.min(concurrency, 4), applicationName: 'school-lunch:migrate' })
  try {
    const roles = (await admin.raw<{ rows: Array<{ rolname: string }> }>('SELECT rolname FROM pg_roles')).rows.map((r) => r.rolname)
    const version = Number((await admin.raw<{ rows: Array<{ v: string }> }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v)
    return {
      url,
      admin,
      databases: await listDatabases(admin),
      roles: new Set(roles),
      free: await freeConnections(admin),
      cloneFromTemplate: false,
      strategy: strategy !== null && version >= 150000 ? strategy : undefined
    }
  } catch (error) {
    await admin.destroy()
    throw error
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

/** The template of every server the rollback touched loses what its schools lost. */
async function rollbackTemplates (run: RunContext, report: MigrateReport): Promise<void> {
  for (const [name, server] of run.plan.views) {
    const undone = new Set(report.schools.filter((s) => s.server === name && s.error === null).flatMap((s) => s.migrations))
    report.templates[name] = await rollbackTemplate(server.admin, server.url, run.source, undone)
  }
}
