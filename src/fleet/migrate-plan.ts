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
  rollback: boolean
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
  if (context.rollback) {
    return exists ? plan('rollback', 'undo its last batch') : plan('refuse', 'its database does not exist; nothing to roll back')
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
