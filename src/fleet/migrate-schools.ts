import type { Knex } from 'knex'
import { inspectCatalog, openCatalog, prepareCatalog } from '../catalog/catalog.js'
import { schoolsRepository, type SchoolWithStatus } from '../catalog/schools.js'
import { DEVELOPMENT_ROLE_SECRET } from '../config.js'
import { createDatabase, freeConnections, listDatabases, type CreateStrategy } from '../postgres/admin.js'
import { createKnex, databaseMessage, databaseOf, databaseUrl } from '../postgres/connection.js'
import {
  appMigrations, completedMigrations, pendingMigrations, runMigrations, withMigrationLock, type DirectoryMigrationSource
} from '../postgres/migrations.js'
import {
  ensureSchoolRole, grantTableAccess, restrictDatabase, roleKeyId, schoolRoleName, schoolRolePassword, type RoleOutcome
} from '../postgres/roles.js'
import type { Topology } from '../postgres/topology.js'
import { runConcurrently } from './concurrency.js'
import { planSchool, type PlanAction, type PlanContext, type SchoolPlan, type ServerView } from './migrate-plan.js'
import {
  describeTemplate, inspectTemplate, prepareTemplate, provisionClone, rollbackTemplate, TEMPLATE_DATABASE
} from './template.js'

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
  onProgress?: (progress: { done: number, total: number, failed: number }) => void
}

export interface SchoolOutcome {
  slug: string
  server: string
  databaseName: string
  /** What the run decided for this school, and why. */
  action: PlanAction
  reason: string
  /** `cloned`: created from the template; `missing` only in a dry run. */
  database: 'created' | 'cloned' | 'existed' | 'missing'
  /** The school's login role; `missing` only in a dry run. */
  role: RoleOutcome | 'missing'
  /** Migrations applied (or rolled back, or in a dry run pending). */
  migrations: string[]
  error: string | null
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
    report.schools.every((s) => s.error === null && s.database === 'existed' && s.role === 'existed' && s.migrations.length === 0)
}

export function hasFailures (report: MigrateReport): boolean {
  return report.unknownSlugs.length > 0 || report.schools.some((s) => s.error !== null)
}

interface ServerHandle extends ServerView {
  url: string
  admin: Knex
  databases: Set<string>
  roles: Set<string>
  free: number
  /** Undefined on servers older than PostgreSQL 15, which lack the option. */
  strategy: CreateStrategy | undefined
}

interface RunContext {
  dryRun: boolean
  source: DirectoryMigrationSource
  roleSecret: string
  keyId: string
  schools: ReturnType<typeof schoolsRepository>
  handles: Map<string, ServerHandle>
  plan: PlanContext
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
    roleSecret,
    keyId: roleKeyId(roleSecret),
    schools: schoolsRepository(catalog),
    handles,
    plan: {
      servers: topology.servers,
      views: handles,
      catalogDatabase: databaseOf(topology.catalogUrl),
      latestMigration: (await source.names()).at(-1) ?? null,
      keyId: roleKeyId(roleSecret),
      rollback,
      verify: options.verify === true
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
  for (const [name, server] of run.handles) {
    const undone = new Set(report.schools.filter((s) => s.server === name && s.error === null).flatMap((s) => s.migrations))
    report.templates[name] = await rollbackTemplate(server.admin, server.url, run.source, undone)
  }
}

/** One school: its plan, then the handler of that plan (or, in a dry run, its description). */
async function migrateSchool (school: SchoolWithStatus, run: RunContext): Promise<SchoolOutcome> {
  const plan = planSchool(school, run.plan)
  const outcome: SchoolOutcome = {
    slug: school.slug,
    server: school.server,
    databaseName: school.databaseName,
    action: plan.action,
    reason: plan.reason,
    database: 'existed',
    role: 'existed',
    migrations: [],
    error: null
  }
  if (plan.action === 'skip') return outcome
  const job = new SchoolJob(school, run, outcome)
  try {
    if (plan.action === 'refuse') throw new Error(plan.reason)
    await (run.dryRun ? describePlan : HANDLERS[plan.action])(job, plan)
  } catch (error) {
    outcome.error = job.failure(error)
    if (!run.dryRun && plan.record) await run.schools.recordMigration(school.id, { error: outcome.error }).catch(() => {})
  } finally {
    await job.close()
  }
  return outcome
}

/** One school's work: its server, its outcome, and one connection to its database, opened on first use. */
class SchoolJob {
  readonly role: string
  private knex: Knex | null = null
  private failedMigration: string | null = null

  constructor (readonly school: SchoolWithStatus, readonly run: RunContext, readonly outcome: SchoolOutcome) {
    this.role = schoolRoleName(school.databaseName)
  }

  get server (): ServerHandle {
    const server = this.run.handles.get(this.school.server)
    if (server === undefined) throw new Error(`server "${this.school.server}" is not open`)
    return server
  }

  /** One connection, closed as soon as the school is done. */
  get db (): Knex {
    this.knex ??= createKnex(databaseUrl(this.server.url, this.school.databaseName), {
      max: 1,
      applicationName: 'school-lunch:migrate',
      // knex warns which migration failed; that name goes into the outcome.
      log: { warn: (message: string) => { this.failedMigration = /migration file "(.+)" failed/.exec(message)?.[1] ?? this.failedMigration } }
    })
    return this.knex
  }

  get password (): string {
    return schoolRolePassword(this.run.roleSecret, this.role)
  }

  /** The role as a real run would leave it: made, given a new password, or left alone. */
  get roleChange (): RoleOutcome | 'missing' {
    if (!this.server.roles.has(this.role)) return 'missing'
    return this.school.roleKeyId === this.run.keyId ? 'existed' : 'updated'
  }

  failure (error: unknown): string {
    return (this.failedMigration === null ? '' : `${this.failedMigration}: `) + databaseMessage(error)
  }

  async record (migration: string | null): Promise<void> {
    if (this.school.roleKeyId !== this.run.keyId) await this.run.schools.setRoleKeyId(this.school.id, this.run.keyId)
    await this.run.schools.recordMigration(this.school.id, { migration })
  }

  async close (): Promise<void> {
    await this.knex?.destroy()
  }
}

type Handler = (job: SchoolJob, plan: SchoolPlan) => Promise<void>

const HANDLERS: Record<Exclude<PlanAction, 'skip' | 'refuse'>, Handler> = {
  async clone (job) {
    const { server, school, outcome, run } = job
    outcome.database = await cloneDatabase(server, school.databaseName)
    server.databases.add(school.databaseName)
    const latest = run.plan.latestMigration
    // A fresh clone of a ready template lacks only its role and grants.
    if (outcome.database === 'cloned' && latest !== null && !server.roles.has(job.role) &&
      await provisionClone(job.db, school.databaseName, job.role, job.password, latest)) {
      outcome.role = 'created'
      await job.record(latest)
      return
    }
    await migrateUp(job)
  },

  async create (job) {
    const { server, school, outcome } = job
    outcome.database = await createDatabase(server.admin, school.databaseName, { strategy: server.strategy })
    server.databases.add(school.databaseName)
    await migrateUp(job)
  },

  migrate: async (job) => { await migrateUp(job) },

  async rollback (job) {
    await underLock(job, async (db) => {
      const [, log] = await db.migrate.rollback({ migrationSource: job.run.source }) as [number, string[]]
      job.outcome.migrations = log
    })
  }
}

async function migrateUp (job: SchoolJob): Promise<void> {
  await underLock(job, async (db) => { job.outcome.migrations = await runMigrations(db, job.run.source) })
}

/**
 * The general path, under the database's migration lock: the role and its
 * password, the database closed to others, the migration step, the table
 * grants; then the catalog's record.
 */
async function underLock (job: SchoolJob, step: (db: Knex) => Promise<void>): Promise<void> {
  const { db, school, outcome } = job
  const latest = await withMigrationLock(db, async () => {
    outcome.role = await ensureSchoolRole(db, job.role, job.password, school.roleKeyId !== job.run.keyId)
    await restrictDatabase(db, school.databaseName, job.role)
    await step(db)
    await grantTableAccess(db, job.role)
    return (await completedMigrations(db)).at(-1) ?? null
  })
  await job.record(latest)
}

/**
 * A clone of the template; when the template turns out busy (another run
 * migrating it) or gone, a plain database that the migrations then fill.
 */
async function cloneDatabase (server: ServerHandle, name: string): Promise<SchoolOutcome['database']> {
  if (server.cloneFromTemplate) {
    try {
      const outcome = await createDatabase(server.admin, name, { template: TEMPLATE_DATABASE, strategy: server.strategy })
      return outcome === 'created' ? 'cloned' : outcome
    } catch (error) {
      const code = (error as { code?: string }).code
      // 55006: the template is being accessed; 3D000: it does not exist.
      if (code !== '55006' && code !== '3D000') throw error
      // PostgreSQL waited 5 s before refusing; the rest of this run goes plain.
      server.cloneFromTemplate = false
    }
  }
  return await createDatabase(server.admin, name, { strategy: server.strategy })
}

/** A dry run: what the plan would do, read from the school's database where needed; nothing is changed. */
async function describePlan (job: SchoolJob, plan: SchoolPlan): Promise<void> {
  const { outcome, run } = job
  outcome.role = job.roleChange
  switch (plan.action) {
    case 'clone':
    case 'create':
      outcome.database = 'missing'
      outcome.migrations = await run.source.names()
      return
    case 'migrate':
      outcome.migrations = await pendingMigrations(job.db, run.source)
      return
    case 'rollback':
      outcome.migrations = await lastBatch(job.db)
  }
}

/** The migrations a rollback would undo, newest first, as knex's rollback reports them. */
async function lastBatch (db: Knex): Promise<string[]> {
  const done = await completedMigrations(db)
  if (done.length === 0) return []
  const { rows } = await db.raw<{ rows: Array<{ name: string }> }>(
    'SELECT name FROM knex_migrations WHERE batch = (SELECT max(batch) FROM knex_migrations) ORDER BY id DESC')
  return rows.map((row) => row.name)
}
