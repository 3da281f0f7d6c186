import fs from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import type pg from 'pg'
import { schoolsRepository, seedsRepository, type School } from '../catalog/schools.js'
import { createKnex } from '../postgres/connection.js'
import { quoteIdentifier } from '../postgres/names.js'
import { BACKUP_FORMAT, BackupWriter, type BackupManifest } from './backup-format.js'
import { SchoolAdminError, type Servers } from './school-admin.js'
import { resolveSchoolServer } from './school-server.js'
import { copyOut, listAppTables, openCopyClient, readMigrationHistory, readSequences, tableSums } from './table-copy.js'

/*
 * npm run schools -- backup <slug>: one school's tables into one file
 * (backup-format.ts), read in one REPEATABLE READ snapshot, so a backup
 * taken while the school is written to is still one consistent state.
 */

export interface BackupOptions {
  slug: string
  /** The file to write; by default `<slug>-<time>.schoolbackup` in `directory`. */
  out?: string
  directory: string
  now?: Date
}

export interface BackupReport {
  file: string
  manifest: BackupManifest
  tables: Array<{ name: string, rows: number, bytes: number }>
  bytes: number
  ms: number
}

export const BACKUP_EXTENSION = '.schoolbackup'

/** `pinewood-2026-11-30T05-12-54Z.schoolbackup`: the slug and the time, in a name every file system takes. */
export function defaultBackupName (slug: string, now: Date): string {
  return `${slug}-${now.toISOString().replace(/\.\d+Z$/, 'Z').replaceAll(':', '-')}${BACKUP_EXTENSION}`
}

export async function backupSchool (where: Servers, options: BackupOptions): Promise<BackupReport> {
  const catalog = createKnex(where.catalogUrl, { max: 1, applicationName: 'school-lunch:backup' })
  let school: School
  let seeds: string[]
  try {
    const found = await schoolsRepository(catalog).findBySlug(options.slug)
    if (found === null) throw new SchoolAdminError(`Unknown school "${options.slug}": it is not in the catalog`)
    school = found
    seeds = await seedsRepository(catalog).seedsRun(school.id)
  } finally {
    await catalog.destroy()
  }
  const now = options.now ?? new Date()
  const file = path.resolve(options.directory, options.out ?? defaultBackupName(school.slug, now))
  if (fs.existsSync(file)) throw new SchoolAdminError(`${file} already exists; choose another file with --out`)
  return await writeBackup(school, resolveSchoolServer(school, where.servers), { file, now, seeds })
}

/** Written to `<file>.partial` and renamed at the end, so a failed backup leaves no file that looks whole. */
async function writeBackup (school: School, serverUrl: string, { file, now, seeds }: { file: string, now: Date, seeds: string[] }): Promise<BackupReport> {
  const started = performance.now()
  const partial = `${file}.partial`
  const client = await openSchool(school, serverUrl)
  // A .partial left by a backup that died is overwritten.
  const out = fs.createWriteStream(partial)
  let failure: Error | null = null
  out.on('error', (error) => { failure = error })
  try {
    const locked = await listAppTables(client)
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    // LOCK takes no snapshot: the snapshot comes after it, and no migration can change a table under the backup.
    if (locked.length > 0) await client.query(`LOCK TABLE ${locked.map((t) => `public.${quoteIdentifier(t.name)}`).join(', ')} IN ACCESS SHARE MODE`)
    const tables = await listAppTables(client)
    const sums = await tableSums(client, tables)
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      school: { slug: school.slug, name: school.name, databaseName: school.databaseName, server: school.server },
      migrations: await readMigrationHistory(client),
      takenAt: now.toISOString(),
      tables: tables.map((table, i) => ({ name: table.name, columns: table.columns, rows: sums[i]?.rows ?? 0, checksum: sums[i]?.checksum ?? '' })),
      sequences: await readSequences(client),
      seeds
    }
    const writer = new BackupWriter(out)
    await writer.manifest(manifest)
    const written: BackupReport['tables'] = []
    for (const table of tables) written.push({ name: table.name, ...await writer.table(table.name, copyOut(client, table)) })
    await writer.finish()
    await client.query('COMMIT')
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => { (error ?? failure) == null ? resolve() : reject(error ?? failure) }))
    await fs.promises.rename(partial, file)
    return { file, manifest, tables: written, bytes: writer.bytes, ms: performance.now() - started }
  } catch (error) {
    out.destroy()
    await fs.promises.rm(partial, { force: true })
    throw error
  } finally {
    await client.end().catch(() => {})
  }
}

async function openSchool (school: School, serverUrl: string): Promise<pg.Client> {
  try {
    return await openCopyClient(serverUrl, school.databaseName, 'school-lunch:backup')
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error
    throw new SchoolAdminError(`School "${school.slug}" has no database on server "${school.server}": nothing to back up`)
  }
}
