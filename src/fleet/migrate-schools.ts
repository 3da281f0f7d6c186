import type { Knex } from 'knex'
import { inspectCatalog, openCatalog, prepareCatalog } from '../catalog/catalog.js'
import { schoolsRepository, type SchoolWithStatus } from '../catalog/schools.js'
import { DEVELOPMENT_ROLE_SECRET } from '../config.js'
import { createDatabase, freeConnections, listDatabases, type CreateStrategy } from '../postgres/admin.js'
import { createKnex, databaseOf, databaseUrl } from '../postgres/connection.js'
import {
  appMigrations, completedMigrations, MIGRATION_XACT_LOCK_SQL, pendingMigrations, runMigrations, withMigrationLock
} from '../postgres/migrations.js'
import { assertSafeName, assertSchoolDatabaseName, quoteIdentifier } from '../postgres/names.js'
import {
  createRoleSql, ensureSchoolRole, grantTableAccess, restrictDatabase, restrictDatabaseSql, roleKeyId, schoolRoleName,
  schoolRolePassword, tableAccessSql, type RoleOutcome
} from '../postgres/roles.js'
import type { Topology } from '../postgres/topology.js'
import { runConcurrently } from './concurrency.js'

/**
 * Each server keeps one template database at the latest app migration; new
 * school databases are cloned from it. Its name has a dot, which a school's
 * database name cannot, so no school can ever be given it.
 */
export const TEMPLATE_DATABASE = 'tenant.template'

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
  onProgress?: (progress: { done: number, total: number, failed: number }) => void
}

export interface SchoolOutcome {
  slug: string
  server: string
  databaseName: string
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
  /** Per server: the template's state, or why it could not be used. */
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

/**
 * Brings the catalog, then every school database, to the latest migration.
 * Each school is created (cloned from its server's template when it can be),
 * given its role and migrated on its own; a failure is recorded in its
 * outcome and in the catalog, and never stops the others.
 */
export async function migrateSchools (topology: Topology, options: MigrateOptions): Promise<MigrateReport> {
  const dryRun = options.dryRun === true
  const report: MigrateReport = {
    dryRun,
    rollback: options.rollback === true,
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
  const catalog = openCatalog(topology.catalogUrl, 2)
  const context: SchoolContext = {
    topology,
    dryRun,
    rollback: options.rollback === true,
    catalogDatabase: databaseOf(topology.catalogUrl),
    roleSecret,
    keyId: roleKeyId(roleSecret),
    latestMigration: (await appMigrations.names()).at(-1) ?? null,
    verify: options.verify === true,
    schools: schoolsRepository(catalog),
    servers: new Map()
  }
  try {
    let only = options.only
    if (options.failedOnly === true) {
      const failed = await context.schools.failedSlugs()
      only = only === undefined ? failed : only.filter((slug) => failed.includes(slug))
    }
    const schools = await context.schools.listWithStatus(only === undefined ? {} : { slugs: only })
    report.unknownSlugs = (options.only ?? []).filter((slug) => !schools.some((s) => s.slug === slug))
    for (const name of new Set(schools.map((s) => s.server))) {
      const url = topology.servers[name]
      if (url === undefined) continue
      const server = await openServer(url, options.concurrency, options.createStrategy ?? null)
      context.servers.set(name, server)
      if (options.useTemplate !== false && !dryRun && !context.rollback) {
        report.templates[name] = await prepareTemplate(server)
      }
    }
    report.concurrency.used = Math.max(1, Math.min(options.concurrency,
      ...[...context.servers.values()].map((s) => Math.floor(s.free / 2))))

    let done = 0
    let failed = 0
    report.schools = await runConcurrently(schools, report.concurrency.used, async (school) => {
      const outcome = await migrateSchool(school, context)
      done++
      if (outcome.error !== null) failed++
      options.onProgress?.({ done, total: schools.length, failed })
      return outcome
    })
  } finally {
    await Promise.all([...context.servers.values()].map(async (s) => await s.admin.destroy()))
    await catalog.destroy()
  }
  return report
}

interface SchoolContext {
  topology: Topology
  dryRun: boolean
  rollback: boolean
  catalogDatabase: string
  roleSecret: string
  keyId: string
  latestMigration: string | null
  verify: boolean
  schools: ReturnType<typeof schoolsRepository>
  servers: Map<string, ServerHandle>
}

interface ServerHandle {
  url: string
  admin: Knex
  databases: Set<string>
  roles: Set<string>
  free: number
  /** True once the template is known to be at the latest migration. */
  templateReady: boolean
  /** Undefined on servers older than PostgreSQL 15, which lack the option. */
  strategy: CreateStrategy | undefined
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
      templateReady: false,
      strategy: strategy !== null && version >= 150000 ? strategy : undefined
    }
  } catch (error) {
    await admin.destroy()
    throw error
  }
}

/**
 * Creates the server's template when missing and brings it to the latest
 * migration. Whatever goes wrong here only means schools are created the
 * plain way; it is reported, never fatal.
 */
async function prepareTemplate (server: ServerHandle): Promise<string> {
  let created = false
  try {
    if (!server.databases.has(TEMPLATE_DATABASE)) {
      created = await createDatabase(server.admin, TEMPLATE_DATABASE) === 'created'
      server.databases.add(TEMPLATE_DATABASE)
      // Nobody but the admin connects to it; IS_TEMPLATE guards it against a stray DROP.
      await server.admin.raw(`REVOKE CONNECT, TEMPORARY ON DATABASE ${quoteIdentifier(TEMPLATE_DATABASE)} FROM PUBLIC`)
      await server.admin.raw(`ALTER DATABASE ${quoteIdentifier(TEMPLATE_DATABASE)} IS_TEMPLATE true`)
    }
    const db = createKnex(databaseUrl(server.url, TEMPLATE_DATABASE), { max: 1, applicationName: 'school-lunch:migrate' })
    let applied: string[]
    try {
      applied = await withMigrationLock(db, async () => await runMigrations(db, appMigrations))
    } finally {
      // Closed before cloning starts: PostgreSQL will not copy a database in use.
      await db.destroy()
    }
    server.templateReady = true
    return created ? 'created' : applied.length > 0 ? `${applied.length} migration(s) applied` : 'up to date'
  } catch (error) {
    return `not used: ${errorMessage(error)}`
  }
}

/**
 * A new school database: a clone of the template when it is ready, else
 * (template missing, behind, or busy with another run) a plain one that
 * the migrations then fill.
 */
async function createSchoolDatabase (server: ServerHandle, name: string): Promise<SchoolOutcome['database']> {
  if (server.templateReady) {
    try {
      const outcome = await createDatabase(server.admin, name, { template: TEMPLATE_DATABASE, strategy: server.strategy })
      return outcome === 'created' ? 'cloned' : outcome
    } catch (error) {
      const code = (error as { code?: string }).code
      // 55006: the template is being accessed (another run migrating it).
      if (code !== '55006' && code !== '3D000') throw error
      // PostgreSQL waited 5 s before refusing; the rest of this run goes plain.
      server.templateReady = false
    }
  }
  return await createDatabase(server.admin, name, { strategy: server.strategy })
}

async function migrateSchool (school: SchoolWithStatus, context: SchoolContext): Promise<SchoolOutcome> {
  const outcome: SchoolOutcome = {
    slug: school.slug,
    server: school.server,
    databaseName: school.databaseName,
    database: 'existed',
    role: 'existed',
    migrations: [],
    error: null
  }
  let db: Knex | null = null
  let failedMigration: string | null = null
  let checked = false
  try {
    // Checked here too, not only by the catalog: no SQL is built from a bad name.
    assertSafeName(school.slug, 'School slug')
    assertSchoolDatabaseName(school.databaseName)
    checked = true
    const server = context.servers.get(school.server)
    if (server === undefined) {
      throw new Error(`server "${school.server}" is not configured (known: ${Object.keys(context.topology.servers).join(', ')})`)
    }
    if (school.databaseName === context.catalogDatabase) throw new Error(`database "${school.databaseName}" is the catalog's`)
    const role = schoolRoleName(school.databaseName)
    if (!server.databases.has(school.databaseName)) {
      if (context.dryRun || context.rollback) {
        outcome.database = 'missing'
        outcome.role = server.roles.has(role) ? 'existed' : 'missing'
        if (context.rollback) throw new Error('its database does not exist; nothing to roll back')
        outcome.migrations = await appMigrations.names()
        return outcome
      }
      outcome.database = await createSchoolDatabase(server, school.databaseName)
      server.databases.add(school.databaseName)
    }
    // Nothing to do when the catalog records this school at the latest
    // migration with this secret and its database and role still exist: no
    // connection at all, so a no-op run over thousands of schools is quick.
    if (outcome.database === 'existed' && !context.verify && !context.rollback && school.lastError === null && school.migration !== null &&
      school.migration === context.latestMigration && school.roleKeyId === context.keyId && server.roles.has(role)) {
      return outcome
    }
    // One connection per school, closed as soon as the school is done.
    db = createKnex(databaseUrl(server.url, school.databaseName), {
      max: 1,
      applicationName: 'school-lunch:migrate',
      // knex warns which migration failed; that name goes into the outcome.
      log: { warn: (message: string) => { failedMigration = /migration file "(.+)" failed/.exec(message)?.[1] ?? failedMigration } }
    })
    if (context.dryRun) {
      outcome.role = server.roles.has(role) ? (school.roleKeyId === context.keyId ? 'existed' : 'updated') : 'missing'
      outcome.migrations = await pendingMigrations(db, appMigrations)
      return outcome
    }
    const schoolDb = db
    const password = schoolRolePassword(context.roleSecret, role)
    // A fresh clone of a ready template lacks only its role and grants.
    const cloneReady = outcome.database === 'cloned' && !server.roles.has(role) && context.latestMigration !== null &&
      await provisionClone(schoolDb, school.databaseName, role, password, context.latestMigration)
    if (cloneReady) outcome.role = 'created'
    const latest = cloneReady
      ? context.latestMigration
      : await withMigrationLock(schoolDb, async () => {
        outcome.role = await ensureSchoolRole(schoolDb, role, password, school.roleKeyId !== context.keyId)
        await restrictDatabase(schoolDb, school.databaseName, role)
        if (context.rollback) {
          const [, log] = await schoolDb.migrate.rollback({ migrationSource: appMigrations }) as [number, string[]]
          outcome.migrations = log
        } else {
          outcome.migrations = await runMigrations(schoolDb, appMigrations)
        }
        await grantTableAccess(schoolDb, role)
        return (await completedMigrations(schoolDb)).at(-1) ?? null
      })
    if (school.roleKeyId !== context.keyId) await context.schools.setRoleKeyId(school.id, context.keyId)
    await context.schools.recordMigration(school.id, { migration: latest })
  } catch (error) {
    outcome.error = (failedMigration === null ? '' : `${failedMigration}: `) + errorMessage(error)
    // A school whose names were refused is not worth a write.
    if (!context.dryRun && checked) await context.schools.recordMigration(school.id, { error: outcome.error }).catch(() => {})
  } finally {
    await db?.destroy()
  }
  return outcome
}

/**
 * A database just cloned from a template this run brought to the latest
 * migration is already migrated; it lacks only its role and grants. Those go
 * to PostgreSQL as one batch, which it runs as one transaction, under the
 * migration lock: one round trip where the general path makes about 25
 * (knex's migrator alone checks its tables a dozen times). Time per new
 * school is in the README's Performance section.
 *
 * Returns false, having changed nothing, when the clone is not at `latest`
 * (the template moved on under a newer release) or any statement fails
 * (another run created the role first); the general path then takes over.
 */
export async function provisionClone (db: Knex, databaseName: string, role: string, password: string, latest: string): Promise<boolean> {
  const expected = latest.replaceAll("'", "''")
  const batch = [
    MIGRATION_XACT_LOCK_SQL,
    `DO $check$ BEGIN
       IF (SELECT name FROM knex_migrations ORDER BY id DESC LIMIT 1) IS DISTINCT FROM '${expected}' THEN
         RAISE EXCEPTION 'not at the latest migration';
       END IF;
     END $check$`,
    createRoleSql(role, password),
    ...restrictDatabaseSql(databaseName, role),
    ...tableAccessSql(role)
  ]
  try {
    await db.raw(batch.join(';\n'))
    return true
  } catch {
    return false
  }
}

function errorMessage (error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  // knex prefixes the failing SQL; the database's own words are enough.
  return (message.replace(/^[\s\S]*? - /, '').split('\n')[0] ?? message).slice(0, 300)
}
