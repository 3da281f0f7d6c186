import type { SchoolWithStatus } from '../catalog/schools.js'
import { schoolRoleName } from '../postgres/roles.js'
import { resolveSchoolServer, ServerNotConfigured } from './school-server.js'

/*
 * What migrate does to one school is decided here, before anything is done,
 * from what the run read once: the catalog's record and each server's
 * listing of databases and roles. A real run then carries the plan out; a
 * dry run prints it, so the two cannot drift apart.
 */

export type PlanAction = 'refuse' | 'skip' | 'clone' | 'create' | 'migrate' | 'rollback'

/**
 * What happens to the school's seeds after the action: `start` (first
 * provisioned: marked pending, then run), `resume` (pending from an earlier
 * run), `skip` (first provisioned with --no-seed: marked never to run),
 * `none`.
 */
export type SeedStep = 'start' | 'resume' | 'skip' | 'none'

export interface SchoolPlan {
  action: PlanAction
  /** Why: shown by the dry run, and the error of a refusal. */
  reason: string
  /** A refusal is recorded in the catalog, unless the school's own names were the problem. */
  record: boolean
  seeds: SeedStep
}

/** One server as the run found it when it started. */
export interface ServerView {
  databases: ReadonlySet<string>
  roles: ReadonlySet<string>
  /** New school databases are cloned from the server's template. */
  cloneFromTemplate: boolean
}

export interface PlanContext {
  /** Configured servers, name → URL. */
  servers: Readonly<Record<string, string>>
  /** Every configured server that a school of the run names. */
  views: ReadonlyMap<string, ServerView>
  catalogDatabase: string
  latestMigration: string | null
  /** Fingerprint of the secret this run sets passwords with. */
  keyId: string
  /** What a rollback run takes every school back to; null in a run that migrates up. */
  rollback: RollbackPlan | null
  verify: boolean
  /** `run` or `skip` the seeds of schools this run provisions; null: seeds are none of this run's business. */
  seeding: 'run' | 'skip' | null
}

const plan = (action: PlanAction, reason: string, record = true): Omit<SchoolPlan, 'seeds'> => ({ action, reason, record })

export function planSchool (school: SchoolWithStatus, context: PlanContext): SchoolPlan {
  const decided = planAction(school, context)
  return { ...decided, seeds: seedStep(school, decided.action, context) }
}

/**
 * Seeds run the first time a school is provisioned, that is when its
 * database is made, and never again; schools made before seeds existed
 * have no seeding state and get none.
 */
function seedStep (school: SchoolWithStatus, action: PlanAction, context: PlanContext): SeedStep {
  if (context.seeding === null || action === 'refuse' || action === 'rollback') return 'none'
  if (school.seeding === 'pending') return context.seeding === 'run' ? 'resume' : 'none'
  if (school.seeding === null && (action === 'clone' || action === 'create')) return context.seeding === 'run' ? 'start' : 'skip'
  return 'none'
}

function planAction (school: SchoolWithStatus, context: PlanContext): Omit<SchoolPlan, 'seeds'> {
  try {
    resolveSchoolServer(school, context.servers)
  } catch (error) {
    return plan('refuse', (error as Error).message, error instanceof ServerNotConfigured)
  }
  if (school.databaseName === context.catalogDatabase) return plan('refuse', `database "${school.databaseName}" is the catalog's`)
  const server = context.views.get(school.server)
  if (server === undefined) return plan('refuse', `server "${school.server}" was not opened by this run`)
  const exists = server.databases.has(school.databaseName)
  if (context.rollback !== null) {
    return exists ? plan('rollback', rollbackReason(context.rollback)) : plan('refuse', 'its database does not exist; nothing to roll back')
  }
  if (!exists) {
    return server.cloneFromTemplate
      ? plan('clone', 'no database yet; cloned from the template')
      : plan('create', 'no database yet')
  }
  const reason = staleReason(school, context, server.roles.has(schoolRoleName(school.databaseName)))
  return reason === null ? plan('skip', 'recorded at the latest migration; database and role exist') : plan('migrate', reason)
}

/**
 * True when the catalog's record alone says the school needs work: known
 * before its server is even opened. A school the record calls current may
 * still need work once its server shows its database or role missing.
 */
export function recordSaysStale (school: SchoolWithStatus, context: PlanContext): boolean {
  return staleReason(school, context, true) !== null
}

/**
 * Why a school whose database exists must be connected to, or null when the
 * catalog's record can be trusted: a no-op run over thousands of schools
 * then opens no connection at all.
 */
function staleReason (school: SchoolWithStatus, context: PlanContext, roleExists: boolean): string | null {
  if (context.verify) return 'asked to verify'
  if (school.lastError !== null) return 'its last run failed'
  if (school.migration === null) return 'never migrated'
  if (school.migration !== context.latestMigration) return 'behind the latest migration'
  if (school.roleKeyId !== context.keyId) return 'its password was set with another secret'
  if (!roleExists) return 'its role is missing'
  return null
}

/*
 * A fleet rollback names where it goes: every school is taken back to one
 * migration, and loses only what it has of the migrations after it. A
 * school that never got them is left alone, and none is taken lower.
 */

export interface RollbackPlan {
  /** The migration schools are taken back to; null: before the first, which drops their tables. */
  target: string | null
  /** The migrations after the target, newest first. */
  undo: readonly string[]
  /** Every migration the code knows, oldest first. */
  known: readonly string[]
}

/** A rollback that must not run as asked; nothing was changed. */
export class RollbackRefused extends Error {
  override name = 'RollbackRefused'
}

/**
 * The rollback of a run: by default back to the migration before the
 * newest the code knows; `to` names another, and null means before the
 * first. Undoing the first, the baseline that creates the tables, is never
 * what the default picks.
 */
export function resolveRollback (known: readonly string[], to?: string | null): RollbackPlan {
  const newest = known.at(-1)
  if (newest === undefined) throw new RollbackRefused('there are no app migrations to roll back')
  let target: string | null
  if (to === undefined) {
    if (known.length < 2) {
      throw new RollbackRefused(`the newest migration, ${newest}, is the baseline: undoing it drops every school's tables and data (--undo-baseline --yes does that)`)
    }
    target = known.at(-2) ?? null
  } else {
    target = to
    if (to !== null && !known.includes(to)) throw new RollbackRefused(`no app migration is named ${to} (known: ${known.join(', ')})`)
    if (to === newest) throw new RollbackRefused(`${to} is the newest migration: there is nothing after it to undo`)
  }
  return { target, undo: known.slice(target === null ? 0 : known.indexOf(target) + 1).reverse(), known }
}

/**
 * What one school loses to the rollback, newest first, from the history
 * its database records. Throws, having changed nothing, when the history
 * holds a migration this code lacks, or when a rollback to a named target
 * would leave the school with no migration at all.
 */
export function schoolRollback (completed: readonly string[], rollback: RollbackPlan): string[] {
  const foreign = completed.filter((name) => !rollback.known.includes(name))
  if (foreign.length > 0) {
    throw new RollbackRefused(`its history records ${foreign.join(', ')}, which this release does not have: roll back with the release that added it`)
  }
  const undo = rollback.undo.filter((name) => completed.includes(name))
  if (rollback.target !== null && undo.length > 0 && undo.length === completed.length) {
    throw new RollbackRefused(`undoing ${undo.join(', ')} would leave it no migration and drop its tables (only --undo-baseline does that)`)
  }
  return undo
}

function rollbackReason (rollback: RollbackPlan): string {
  return rollback.target === null
    ? 'undo every migration it has (--undo-baseline)'
    : `back to ${rollback.target}: undo what it has of ${rollback.undo.join(', ')}`
}
