import type { Knex } from 'knex'
import { inspectCatalog, openCatalog, prepareCatalog } from '../catalog/catalog.js'
import { schoolsRepository, type School } from '../catalog/schools.js'
import { createDatabase, freeConnections, listDatabases } from '../postgres/admin.js'
import { createKnex, databaseUrl } from '../postgres/connection.js'
import { appMigrations, migrateToLatest, pendingMigrations } from '../postgres/migrations.js'
import { assertSafeName } from '../postgres/names.js'
import type { Topology } from '../postgres/topology.js'
import { runConcurrently } from './concurrency.js'

export interface MigrateOptions {
  /** Schools migrated at once; clamped to what the servers have free. */
  concurrency: number
  /** Slugs to limit the run to; every school when absent. */
  only?: string[]
  /** Report what would change and change nothing. */
  dryRun?: boolean
  onProgress?: (progress: { done: number, total: number, failed: number }) => void
}

export interface SchoolOutcome {
  slug: string
  server: string
  databaseName: string
  /** `missing` only in a dry run: the database would be created. */
  database: 'created' | 'existed' | 'missing'
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
    report.schools.every((s) => s.error === null && s.database === 'existed' && s.migrations.length === 0)
}

export function hasFailures (report: MigrateReport): boolean {
  return report.unknownSlugs.length > 0 || report.schools.some((s) => s.error !== null)
}

/**
 * Brings the catalog, then every school database, to the latest migration.
 * Each school is created and migrated on its own; a failure is recorded in
 * its outcome and never stops the others.
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

  const catalog = openCatalog(topology.catalogUrl, 1)
  let schools: School[]
  try {
    schools = await schoolsRepository(catalog).list(options.only === undefined ? {} : { slugs: options.only })
  } finally {
    await catalog.destroy()
  }
  report.unknownSlugs = (options.only ?? []).filter((slug) => !schools.some((s) => s.slug === slug))

  const servers = new Map<string, ServerHandle>()
  try {
    for (const name of new Set(schools.map((s) => s.server))) {
      const url = topology.servers[name]
      if (url !== undefined) servers.set(name, await openServer(url, options.concurrency))
    }
    report.concurrency.used = Math.max(1, Math.min(options.concurrency,
      ...[...servers.values()].map((s) => Math.floor(s.free / 2))))

    let done = 0
    let failed = 0
    report.schools = await runConcurrently(schools, report.concurrency.used, async (school) => {
      const outcome = await migrateSchool(school, servers, topology, dryRun)
      done++
      if (outcome.error !== null) failed++
      options.onProgress?.({ done, total: schools.length, failed })
      return outcome
    })
  } finally {
    await Promise.all([...servers.values()].map(async (s) => await s.admin.destroy()))
  }
  return report
}

interface ServerHandle {
  url: string
  admin: Knex
  databases: Set<string>
  free: number
}

async function openServer (url: string, concurrency: number): Promise<ServerHandle> {
  // CREATE DATABASE copies a template and takes a lock on it; a few at a
  // time is as fast as many and keeps connections for the migrations.
  const admin = createKnex(databaseUrl(url, 'postgres'), { max: Math.min(concurrency, 4), applicationName: 'school-lunch:migrate' })
  try {
    return { url, admin, databases: await listDatabases(admin), free: await freeConnections(admin) }
  } catch (error) {
    await admin.destroy()
    throw error
  }
}

async function migrateSchool (school: School, servers: Map<string, ServerHandle>, topology: Topology, dryRun: boolean): Promise<SchoolOutcome> {
  const outcome: SchoolOutcome = {
    slug: school.slug,
    server: school.server,
    databaseName: school.databaseName,
    database: 'existed',
    migrations: [],
    error: null
  }
  let db: Knex | null = null
  let failedMigration: string | null = null
  try {
    assertSafeName(school.slug, 'School slug')
    assertSafeName(school.databaseName, 'Database name')
    const server = servers.get(school.server)
    if (server === undefined) {
      throw new Error(`server "${school.server}" is not configured (known: ${Object.keys(topology.servers).join(', ')})`)
    }
    if (!server.databases.has(school.databaseName)) {
      if (dryRun) {
        outcome.database = 'missing'
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
    outcome.migrations = dryRun
      ? await pendingMigrations(db, appMigrations)
      : await migrateToLatest(db, appMigrations)
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
