import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Knex } from 'knex'
import type pg from 'pg'
import { prepareCatalog } from '../catalog/catalog.js'
import { schoolsRepository, seedsRepository, type School } from '../catalog/schools.js'
import { createKnex, databaseMessage, databaseUrl, openConnection } from '../postgres/connection.js'
import { appMigrations, type DirectoryMigrationSource } from '../postgres/migrations.js'
import { assertSchoolDatabaseName } from '../postgres/names.js'
import { roleKeyId, schoolRoleName, schoolRolePassword, schoolRoleUrl } from '../postgres/roles.js'
import { publicCopies } from '../lunch/public-menus.js'
import { BackupRejected, copyText, readBackup, type BackupManifest } from './backup-format.js'
import { backupSchool } from './backup.js'
import { recopyPublicWeeks } from './for-each-school.js'
import { checkNewSchool, defaultDatabaseName, dropSchoolDatabase, placeSchool, SchoolAdminError, type Servers } from './school-admin.js'
import { checkHistory, SchoolDatabaseBuild } from './school-database.js'
import { holdMigrationLock, holdRestoreLock } from './school-lock.js'
import { resolveSchoolServer } from './school-server.js'
import { compareSums, copyIn, listAppTables, openCopyClient, tableSums, truncateTables, writeSequences } from './table-copy.js'
import { freezeWrites, thawWrites } from './write-freeze.js'

/*
 * npm run schools -- restore <file> --as <slug>: a backup becomes a new
 * school. The file is read through and checked before anything is made;
 * then the database is built at the backup's migration, filled, checked
 * against the manifest, brought to the latest migration, and only then
 * does the school enter the catalog. Any failure drops what was built.
 *
 * --replace, for a slug that exists: its writes are frozen, its data backed
 * up next to the file, the restore built beside it under another database
 * name, and the catalog row switched to it in one update; the old database
 * goes last. A failure leaves the existing school as it was, writable.
 */

export interface RestoreOptions {
  file: string
  as: string
  server?: string
  name?: string
  /** The new database's name; by default school_<slug> (school_<slug>_restored when that one is being replaced). */
  databaseName?: string
  replace?: boolean
  roleSecret: string
  useTemplate?: boolean
  migrations?: DirectoryMigrationSource
  now?: Date
}

export interface RestoreReport {
  school: School
  manifest: BackupManifest
  /** Migrations applied after the data went in. */
  migrated: string[]
  /** With --replace: where the replaced data was saved, and whether its old database could be dropped. */
  replaced: { file: string, databaseName: string, server: string, dropError: string | null } | null
  ms: number
}

const APPLICATION = 'school-lunch:restore'

export async function restoreSchool (where: Servers, options: RestoreOptions): Promise<RestoreReport> {
  const started = performance.now()
  const source = options.migrations ?? appMigrations
  const manifest = await readBackup(options.file)
  checkHistory(manifest.migrations, await source.names(), 'The backup')
  checkNewSchool({ slug: options.as, name: options.name ?? manifest.school.name, server: options.server }, Object.keys(where.servers))
  await prepareCatalog(where.catalogUrl)
  const restore = new SchoolRestore(where, options, manifest, source)
  try {
    return { ...await restore.run(), ms: performance.now() - started }
  } finally {
    await restore.close()
  }
}

class SchoolRestore {
  private readonly catalog: Knex
  private lockClient: pg.Client | null = null
  /** With --replace: on the replaced school's database, holding its migration lock and its writes frozen. */
  private frozen: pg.Client | null = null
  private admin: Knex | null = null

  constructor (private readonly where: Servers, private readonly options: RestoreOptions, private readonly manifest: BackupManifest,
    private readonly source: DirectoryMigrationSource) {
    this.catalog = createKnex(where.catalogUrl, { max: 1, applicationName: APPLICATION })
  }

  async run (): Promise<Omit<RestoreReport, 'ms'>> {
    const { options } = this
    this.lockClient = await openConnection(this.where.catalogUrl, { applicationName: APPLICATION, connectTimeoutMillis: 5_000 })
    await holdRestoreLock(this.lockClient, options.as)
    const schools = schoolsRepository(this.catalog)
    const existing = await schools.findBySlug(options.as)
    if (existing !== null && options.replace !== true) {
      throw new SchoolAdminError(`School "${options.as}" already exists; restore --replace saves its data next to the file, then replaces it`)
    }
    const server = options.server ?? existing?.server ?? placeSchool(Object.keys(this.where.servers), await schools.countByServer())
    const databaseName = await this.pickDatabaseName(existing)
    const serverUrl = this.where.servers[server]
    if (serverUrl === undefined) throw new SchoolAdminError(`Server "${server}" is not configured; choose one with --server`)
    const saved = existing === null ? null : await this.freezeAndSave(existing)
    const role = schoolRoleName(databaseName)
    this.admin = createKnex(databaseUrl(serverUrl, 'postgres'), { max: 1, applicationName: APPLICATION })
    const build = new SchoolDatabaseBuild({
      admin: this.admin,
      serverUrl,
      databaseName,
      role,
      password: schoolRolePassword(options.roleSecret, role),
      history: this.manifest.migrations,
      source: this.source,
      useTemplate: options.useTemplate !== false
    })
    let school: School
    let migrated: string[]
    let pendingId: number
    try {
      await build.build()
      await this.load(serverUrl, databaseName)
      migrated = await build.migrateToLatest()
      ;({ school, pendingId } = await this.record(existing, { server, databaseName }))
    } catch (error) {
      await build.remove().catch(() => {})
      if (this.frozen !== null) await thawWrites(this.frozen, schoolRoleName((existing as School).databaseName)).catch(() => {})
      throw error
    }
    await build.complete().catch(() => {})
    await this.copyPublicWeeks(school, serverUrl, pendingId)
    const replaced = existing === null || saved === null ? null : { file: saved, databaseName: existing.databaseName, server: existing.server, dropError: await this.dropReplaced(existing) }
    return { school, manifest: this.manifest, migrated, replaced }
  }

  private async pickDatabaseName (existing: School | null): Promise<string> {
    const base = defaultDatabaseName(this.options.as)
    const name = this.options.databaseName ?? (existing?.databaseName === base ? `${base}_restored` : base)
    try {
      assertSchoolDatabaseName(name)
    } catch (error) {
      throw new SchoolAdminError(`${(error as Error).message} (choose one with --database)`)
    }
    const owner = await this.catalog('schools').where({ database_name: name }).first('slug') as { slug: string } | undefined
    if (owner !== undefined) throw new SchoolAdminError(`Database "${name}" already belongs to school "${owner.slug}": choose another with --database`)
    return name
  }

  /** --replace: the school's writes stop, and what it holds now goes to a file beside the backup. */
  private async freezeAndSave (existing: School): Promise<string> {
    const serverUrl = resolveSchoolServer(existing, this.where.servers)
    this.frozen = await openCopyClient(serverUrl, existing.databaseName, APPLICATION)
    await holdMigrationLock(this.frozen, existing.slug)
    await freezeWrites(this.frozen, schoolRoleName(existing.databaseName))
    try {
      const saved = await backupSchool(this.where, { slug: existing.slug, directory: path.dirname(path.resolve(this.options.file)), now: this.options.now })
      return saved.file
    } catch (error) {
      await thawWrites(this.frozen, schoolRoleName(existing.databaseName)).catch(() => {})
      throw new SchoolAdminError(`Could not save the data of school "${existing.slug}" before replacing it (${databaseMessage(error)}); nothing was changed`)
    }
  }

  /** The file's rows into the new database, in one transaction; then the manifest's counts and checksums, read back. */
  private async load (serverUrl: string, databaseName: string): Promise<void> {
    const client = await openCopyClient(serverUrl, databaseName, APPLICATION)
    try {
      await client.query('BEGIN')
      await truncateTables(client, await listAppTables(client))
      await readBackup(this.options.file, async (table, rows) => {
        await pipeline(Readable.from(copyText(rows)), copyIn(client, table))
      })
      await writeSequences(client, this.manifest.sequences)
      await client.query('COMMIT')
      const problems = compareSums(this.manifest.tables, await tableSums(client, this.manifest.tables))
      if (problems.length > 0) throw new BackupRejected(`The restored rows do not match the backup's manifest: ${problems.join('; ')}`)
    } finally {
      await client.end().catch(() => {})
    }
  }

  /**
   * The school enters the catalog (or its row moves to the new database) in
   * one transaction, with a note that its public copies must be written
   * from the restored data (see src/lunch/public-menus.ts).
   */
  private async record (existing: School | null, { server, databaseName }: { server: string, databaseName: string }): Promise<{ school: School, pendingId: number }> {
    const name = (this.options.name ?? (existing === null ? this.manifest.school.name : existing.name)).trim()
    const latest = (await this.source.names()).at(-1) ?? null
    return await this.catalog.transaction(async (trx) => {
      const schools = schoolsRepository(trx)
      let school: School
      if (existing === null) {
        school = await schools.insert({ slug: this.options.as, name, databaseName, server })
      } else {
        await trx('schools').where({ id: existing.id }).update({ name, database_name: databaseName, server })
        school = { ...existing, name, databaseName, server }
      }
      await schools.setRoleKeyId(school.id, roleKeyId(this.options.roleSecret))
      await schools.recordMigration(school.id, { migration: latest })
      await trx('school_seeds').where({ school_id: school.id }).delete()
      await seedsRepository(trx).recordSeeds(school.id, this.manifest.seeds)
      await seedsRepository(trx).setSeeding(school.id, 'done')
      const pendingId = await publicCopies(trx).markPending(school.id)
      return { school: { ...school, roleKeyId: roleKeyId(this.options.roleSecret) }, pendingId }
    })
  }

  /** The restored weeks reach the public page now; if not, the note leaves them to the API's repairer. */
  private async copyPublicWeeks (school: School, serverUrl: string, pendingId: number): Promise<void> {
    const db = createKnex(schoolRoleUrl(serverUrl, school.databaseName, this.options.roleSecret), { max: 1, applicationName: APPLICATION })
    try {
      await recopyPublicWeeks(publicCopies(this.catalog), school.id, db, pendingId)
    } finally {
      await db.destroy()
    }
  }

  /** The replaced database and its role, once the catalog no longer names them; an error is reported, not thrown. */
  private async dropReplaced (existing: School): Promise<string | null> {
    // With the migration lock still held, as a move drops its source (see move.ts).
    return await dropSchoolDatabase(resolveSchoolServer(existing, this.where.servers), existing.databaseName, APPLICATION)
  }

  async close (): Promise<void> {
    await Promise.all([this.lockClient, this.frozen].map(async (client) => await client?.end().catch(() => {})))
    await Promise.all([this.catalog.destroy(), this.admin?.destroy()])
  }
}
