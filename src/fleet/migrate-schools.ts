import type { Knex } from 'knex'
import { inspectCatalog, openCatalog, prepareCatalog } from '../catalog/catalog.js'
import { schoolsRepository, type School } from '../catalog/schools.js'
import { createDatabase, freeConnections, listDatabases } from '../postgres/admin.js'
import { DEVELOPMENT_ROLE_SECRET } from '../config.js'
import { createKnex, databaseOf, databaseUrl } from '../postgres/connection.js'
import { appMigrations, pendingMigrations, runMigrations, withMigrationLock } from '../postgres/migrations.js'
import { assertSafeName, assertSchoolDatabaseName } from '../postgres/names.js'
import {
  ensureSchoolRole, grantTableAccess, restrictDatabase, roleKeyId, schoolRoleName, schoolRolePassword, type RoleOutcome
} from '../postgres/roles.js'
import type { Topology } from '../postgres/topology.js'
import { runConcurrently } from './concurrency.js'

export interface MigrateOptions {
  /** Schools migrated at once; clamped to what the servers have free. */
  concurrency: number
  /** Slugs to limit the run to; every school when absent. */
  only?: string[]
  /** Report what would change and change nothing. */
  dryRun?: boolean
  /** TENANT_ROLE_SECRET: derives the school roles' passwords. */
  roleSecret?: string
  onProgress?: (progress: { done: number, total: number, failed: number }) => void
}

export interface SchoolOutcome {
  slug: string
  server: string
  databaseName: string
  /** `missing` only in a dry run: the database would be created. */
  database: 'created' | 'existed' | 'missing'
  /** The school's login role; `missing` only in a dry run. */
  role: RoleOutcome | 'missing'
  /** Migrations applied, or in a dry run those pending. */
  migrations: string[]
  error: string | null
}

export interface MigrateReport {
  dryRun: boolean
  catalog: { created: boolean, missing: boolean, migrations: string[] }
  concurrency: { requested: number, used: number }
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
 * Each school is created, given its role and migrated on its own; a failure
 * is recorded in its outcome and never stops the others.
 */
export async function migrateSchools (topology: Topology, options: MigrateOptions): Promise<MigrateReport> {
  const dryRun = options.dryRun === true
  const report: MigrateReport = {
    dryRun,
    catalog: { created: false, missing: false, migrations: [] },
    concurrency: { requested: options.concurrency, used: options.concurrency },
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
    catalogDatabase: databaseOf(topology.catalogUrl),
    roleSecret,
    keyId: roleKeyId(roleSecret),
    schools: schoolsRepository(catalog),
    servers: new Map()
  }
  try {
    const schools = await context.schools.list(options.only === undefined ? {} : { slugs: options.only })
    report.unknownSlugs = (options.only ?? []).filter((slug) => !schools.some((s) => s.slug === slug))
    for (const name of new Set(schools.map((s) => s.server))) {
      const url = topology.servers[name]
      if (url !== undefined) context.servers.set(name, await openServer(url, options.concurrency))
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
  catalogDatabase: string
  roleSecret: string
  keyId: string
  schools: ReturnType<typeof schoolsRepository>
  servers: Map<string, ServerHandle>
}

interface ServerHandle {
  url: string
  admin: Knex
  databases: Set<string>
  roles: Set<string>
  free: number
}

async function openServer (url: string, concurrency: number): Promise<ServerHandle> {
  // CREATE DATABASE copies a template and takes a lock on it; a few at a
  // time is as fast as many and keeps connections for the migrations.
  const admin = createKnex(databaseUrl(url, 'postgres'), { max: Math.min(concurrency, 4), applicationName: 'school-lunch:migrate' })
  try {
    const roles = (await admin.raw<{ rows: Array<{ rolname: string }> }>('SELECT rolname FROM pg_roles')).rows.map((r) => r.rolname)
    return { url, admin, databases: await listDatabases(admin), roles: new Set(roles), free: await freeConnections(admin) }
  } catch (error) {
    await admin.destroy()
    throw error
  }
}

async function migrateSchool (school: School, context: SchoolContext): Promise<SchoolOutcome> {
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
  try {
    // Checked here too, not only by the catalog: no SQL is built from a bad name.
    assertSafeName(school.slug, 'School slug')
    assertSchoolDatabaseName(school.databaseName)
    const server = context.servers.get(school.server)
    if (server === undefined) {
      throw new Error(`server "${school.server}" is not configured (known: ${Object.keys(context.topology.servers).join(', ')})`)
    }
    if (school.databaseName === context.catalogDatabase) throw new Error(`database "${school.databaseName}" is the catalog's`)
    const role = schoolRoleName(school.databaseName)
    if (!server.databases.has(school.databaseName)) {
      if (context.dryRun) {
        outcome.database = 'missing'
        outcome.role = server.roles.has(role) ? 'existed' : 'missing'
        outcome.migrations = await appMigrations.names()
        return outcome
      }
      outcome.database = await createDatabase(server.admin, school.databaseName)
      server.databases.add(school.databaseName)
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
    await withMigrationLock(schoolDb, async () => {
      outcome.role = await ensureSchoolRole(schoolDb, role, schoolRolePassword(context.roleSecret, role), school.roleKeyId !== context.keyId)
      await restrictDatabase(schoolDb, school.databaseName, role)
      outcome.migrations = await runMigrations(schoolDb, appMigrations)
      await grantTableAccess(schoolDb, role)
    })
    if (school.roleKeyId !== context.keyId) await context.schools.setRoleKeyId(school.id, context.keyId)
  } catch (error) {
    outcome.error = (failedMigration === null ? '' : `${failedMigration}: `) + errorMessage(error)
  } finally {
    await db?.destroy()
  }
  return outcome
}

function errorMessage (error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  // knex prefixes the failing SQL; the database's own words are enough.
  return (message.replace(/^[\s\S]*? - /, '').split('\n')[0] ?? message).slice(0, 300)
}
