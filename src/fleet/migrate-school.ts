import type { Knex } from 'knex'
import type { schoolsRepository, SchoolWithStatus, seedsRepository } from '../catalog/schools.js'
import { createDatabase, type CreateStrategy } from '../postgres/admin.js'
import { createKnex, databaseMessage, databaseUrl } from '../postgres/connection.js'
import {
  completedMigrations, latestCompletedMigration, pendingMigrations, runMigrations, withMigrationLock, type DirectoryMigrationSource
} from '../postgres/migrations.js'
import {
  ensureSchoolRole, grantTableAccess, restrictDatabase, schoolAccessSql, schoolRoleName, schoolRolePassword, schoolRoleUrl,
  type RoleOutcome
} from '../postgres/roles.js'
import { schoolRollback, type PlanAction, type PlanContext, type RollbackPlan, type SchoolPlan, type ServerView } from './migrate-plan.js'
import { migrateInOneTransaction, type StepOf } from './one-transaction.js'
import { runSchoolSeeds, SeedFailed, type SeedSource } from './seeds.js'
import type { ServerWatch } from './server-watch.js'
import { cloneFromTemplate, provisionClone } from './template.js'

/*
 * One school of a migrate run: its plan (migrate-plan.ts), then the handler
 * of that plan, then its seeds when the plan has them run.
 */

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
  /** Migrations applied, or undone by a rollback, newest first; in a dry run, what would be. */
  migrations: string[]
  /** Seeds run (in a dry run: to run); see SeedStep for when. */
  seeds: string[]
  error: string | null
}

export interface ServerHandle extends ServerView {
  url: string
  admin: Knex
  /** Its liveness probe: whether a failure is the school's own or the server's. */
  watch: ServerWatch
  databases: Set<string>
  roles: Set<string>
  free: number
  /** Undefined on servers older than PostgreSQL 15, which lack the option. */
  strategy: CreateStrategy | undefined
}

export interface RunContext {
  dryRun: boolean
  startedAt: Date
  source: DirectoryMigrationSource
  seeds: SeedSource
  roleSecret: string
  schools: ReturnType<typeof schoolsRepository>
  seedRecords: ReturnType<typeof seedsRepository>
  /** `views` holds the run's open servers, handles and all. */
  plan: Omit<PlanContext, 'views'> & { views: Map<string, ServerHandle> }
}

/** An outcome before anything is done: the plan's action and reason, nothing changed. */
export function schoolOutcome (school: SchoolWithStatus, plan: Pick<SchoolPlan, 'action' | 'reason'>): SchoolOutcome {
  return {
    slug: school.slug,
    server: school.server,
    databaseName: school.databaseName,
    action: plan.action,
    reason: plan.reason,
    database: 'existed',
    role: 'existed',
    migrations: [],
    seeds: [],
    error: null
  }
}

export async function migrateSchool (school: SchoolWithStatus, plan: SchoolPlan, run: RunContext): Promise<SchoolOutcome> {
  const outcome = schoolOutcome(school, plan)
  if (plan.action === 'skip' && plan.seeds === 'none') return outcome
  const job = new SchoolJob(school, run, outcome)
  try {
    if (plan.action === 'refuse') throw new Error(plan.reason)
    if (run.dryRun) {
      await describePlan(job, plan)
    } else {
      if (plan.seeds === 'start' || plan.seeds === 'skip') await run.seedRecords.setSeeding(school.id, plan.seeds === 'start' ? 'pending' : 'skipped')
      if (plan.action !== 'skip') await HANDLERS[plan.action](job, plan)
      if (plan.seeds === 'start' || plan.seeds === 'resume') await seed(job)
    }
  } catch (error) {
    outcome.error = await job.failure(error)
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
    const server = this.run.plan.views.get(this.school.server)
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

  get rollback (): RollbackPlan {
    const rollback = this.run.plan.rollback
    if (rollback === null) throw new Error('this run does not roll back')
    return rollback
  }

  get password (): string {
    return schoolRolePassword(this.run.roleSecret, this.role)
  }

  /** The role as a real run would leave it: made, given a new password, or left alone. */
  get roleChange (): RoleOutcome | 'missing' {
    if (!this.server.roles.has(this.role)) return 'missing'
    return this.school.roleKeyId === this.run.plan.keyId ? 'existed' : 'updated'
  }

  /** What went wrong, in words for the summary: the server's loss, when that is what it was. */
  async failure (error: unknown): Promise<string> {
    const watch = this.run.plan.views.get(this.school.server)?.watch
    if (watch !== undefined && !await watch.confirm()) return watch.lost ?? 'its server was lost'
    if (error instanceof SeedFailed) return error.message
    return (this.failedMigration === null ? '' : `${this.failedMigration}: `) + databaseMessage(error)
  }

  async record (migration: string | null): Promise<void> {
    if (this.school.roleKeyId !== this.run.plan.keyId) await this.run.schools.setRoleKeyId(this.school.id, this.run.plan.keyId)
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

  async migrate (job) {
    if (!await quickly(job, await rolloutStep(job))) await migrateUp(job)
  },

  async rollback (job) {
    const rollback = job.rollback
    // Undoing the baseline drops the tables: that stays with the general path, one migration at a time.
    if (rollback.target !== null && await quickly(job, (history) => ({ direction: 'down', names: schoolRollback(history, rollback) }))) return
    await underLock(job, async (db) => {
      // One migration at a time, each in its own transaction, so the history
      // always says what is undone; a failure stops at the failing one.
      for (const name of schoolRollback(await completedMigrations(db), rollback)) {
        await db.migrate.down({ migrationSource: job.run.source, name })
        job.outcome.migrations.push(name)
      }
    })
  }
}

/**
 * The school's seeds, after its migrations, as its own role (a connection
 * of its own, closed at once); then the catalog records them all done.
 */
async function seed (job: SchoolJob): Promise<void> {
  const { school, run, outcome } = job
  const db = createKnex(schoolRoleUrl(job.server.url, school.databaseName, run.roleSecret), { max: 1, applicationName: 'school-lunch:seed' })
  try {
    outcome.seeds = await runSchoolSeeds({ school, db, records: run.seedRecords, source: run.seeds })
  } finally {
    await db.destroy()
  }
  await run.seedRecords.setSeeding(school.id, 'done')
}

/**
 * A school with its role in place and set with this run's secret: its step
 * in one transaction (one-transaction.ts). False, having changed nothing,
 * when the general path must do it.
 */
async function quickly (job: SchoolJob, stepOf: StepOf | null): Promise<boolean> {
  const { school, run, outcome } = job
  if (stepOf === null || !job.server.roles.has(job.role) || school.roleKeyId !== run.plan.keyId) return false
  const done = await migrateInOneTransaction(job.db, run.source, stepOf, schoolAccessSql(school.databaseName, job.role))
  if (done === null) return false
  outcome.migrations = done.names
  await job.record(done.latest)
  return true
}

/**
 * A rollout's step for a school the catalog records at an older migration,
 * with no failure since: its history must be exactly the migrations up to
 * that one. Null when the record cannot be trusted that far.
 */
async function rolloutStep (job: SchoolJob): Promise<StepOf | null> {
  const { school, run } = job
  if (run.plan.verify || school.lastError !== null || school.migration === null) return null
  const known = await run.source.names()
  const at = known.indexOf(school.migration)
  if (at === -1 || at === known.length - 1) return null
  const done = known.slice(0, at + 1)
  return (history) => history.length === done.length && history.every((name, i) => name === done[i])
    ? { direction: 'up', names: known.slice(at + 1) }
    : null
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
    outcome.role = await ensureSchoolRole(db, job.role, job.password, school.roleKeyId !== job.run.plan.keyId)
    await restrictDatabase(db, school.databaseName, job.role)
    await step(db)
    await grantTableAccess(db, job.role)
    return await latestCompletedMigration(db)
  })
  await job.record(latest)
}

/**
 * A clone of the template; when the template turns out busy (another run
 * migrating it) or gone, a plain database that the migrations then fill.
 */
async function cloneDatabase (server: ServerHandle, name: string): Promise<SchoolOutcome['database']> {
  if (server.cloneFromTemplate) {
    const outcome = await cloneFromTemplate(server.admin, name, server.strategy)
    if (outcome !== null) return outcome === 'created' ? 'cloned' : outcome
    // PostgreSQL waited 5 s before refusing; the rest of this run goes plain.
    server.cloneFromTemplate = false
  }
  return await createDatabase(server.admin, name, { strategy: server.strategy })
}

/** A dry run: what the plan would do, read from the school's database where needed; nothing is changed. */
async function describePlan (job: SchoolJob, plan: SchoolPlan): Promise<void> {
  const { outcome, run } = job
  outcome.role = job.roleChange
  if (plan.seeds === 'start') outcome.seeds = await run.seeds.names()
  if (plan.seeds === 'resume') {
    const done = await run.seedRecords.seedsRun(job.school.id)
    outcome.seeds = (await run.seeds.names()).filter((name) => !done.includes(name))
  }
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
      outcome.migrations = schoolRollback(await completedMigrations(job.db), job.rollback)
  }
}
