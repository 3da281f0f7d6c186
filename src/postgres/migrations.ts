import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Knex } from 'knex'

interface MigrationFile { name: string, file: string }

/**
 * Lists migrations by file name without its extension. knex records the name
 * its source reports, so `20261123_x.ts` run by tsx in development and
 * `20261123_x.js` run from a build are the same migration in the history.
 */
export class DirectoryMigrationSource implements Knex.MigrationSource<MigrationFile> {
  private listing: Promise<MigrationFile[]> | null = null
  private readonly modules = new Map<string, Promise<Knex.Migration>>()

  /**
   * `last`: the source ends with that migration, for a database brought to
   * where another one stands. `once`: the folder is read on first use only.
   */
  constructor (readonly directory: string, private readonly last: string | null = null, private readonly once = false) {}

  /**
   * The same migrations, the folder read once: a run over thousands of
   * schools lists it a few times per school otherwise (knex's migrator
   * does), and the run must use one list from start to end anyway.
   */
  listedOnce (): DirectoryMigrationSource {
    return new DirectoryMigrationSource(this.directory, this.last, true)
  }

  async getMigrations (): Promise<MigrationFile[]> {
    if (!this.once) return await this._list()
    this.listing ??= this._list()
    return await this.listing
  }

  private async _list (): Promise<MigrationFile[]> {
    const byName = new Map<string, MigrationFile>()
    for (const entry of await fs.readdir(this.directory)) {
      if (!/\.(ts|js|mts|mjs)$/.test(entry) || /\.d\.m?ts$/.test(entry)) continue
      const name = entry.replace(/\.(ts|js|mts|mjs)$/, '')
      if (!byName.has(name)) byName.set(name, { name, file: path.join(this.directory, entry) })
    }
    const all = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name, 'en'))
    return this.last === null ? all : all.slice(0, all.findIndex((m) => m.name === this.last) + 1)
  }

  /** The same migrations up to `last` included (none for null); `last` must be one of them. */
  upTo (last: string | null): DirectoryMigrationSource {
    // No migration is named '': a source with none of them.
    return new DirectoryMigrationSource(this.directory, last ?? '')
  }

  getMigrationName (migration: MigrationFile): string {
    return migration.name
  }

  /**
   * Each module is imported once per source: knex asks for it three times a
   * school, and every import() goes through the module loader's hooks
   * (tsx's run on a thread of their own) even when the module is cached.
   */
  async getMigration (migration: MigrationFile): Promise<Knex.Migration> {
    let module = this.modules.get(migration.file)
    if (module === undefined) {
      module = import(pathToFileURL(migration.file).href) as Promise<Knex.Migration>
      this.modules.set(migration.file, module)
    }
    return await module
  }

  async names (): Promise<string[]> {
    return (await this.getMigrations()).map((m) => m.name)
  }
}

// Resolved beside this module, so a build in dist/ finds its compiled twins.
const databaseDir = fileURLToPath(new URL('../../database/', import.meta.url))
export const appMigrations = new DirectoryMigrationSource(path.join(databaseDir, 'app_migrations'))
export const catalogMigrations = new DirectoryMigrationSource(path.join(databaseDir, 'catalog_migrations'))

/*
 * Our own mutex around knex's migrator: a session-level advisory lock in the
 * migrated database. knex's lock row alone does not cover creating knex's own
 * tables on a brand-new database (two first runs collide there), and a run
 * that crashed with a non-transactional migration leaves that row set for
 * ever. Whoever holds the advisory lock is the only migrator of this tool, so
 * a set knex lock row found under it is stale and is cleared.
 *
 * The lock lives on a connection, so `db` must be a pool of exactly one
 * connection: the lock, knex's migrator and the unlock then share it.
 */
const LOCK_KEY = [7_311_001, 1] as const

/**
 * The same lock for one transaction, as a statement to put first in a batch.
 * Session and transaction advisory locks on one key exclude each other.
 */
export const MIGRATION_XACT_LOCK_SQL = `SELECT pg_advisory_xact_lock(${LOCK_KEY[0]}, ${LOCK_KEY[1]})`

/** The session lock without waiting: one row, `locked`, true when this session now holds it. */
export const MIGRATION_TRY_LOCK_SQL = `SELECT pg_try_advisory_lock(${LOCK_KEY[0]}, ${LOCK_KEY[1]}) AS locked`

export async function migrateToLatest (db: Knex, source: DirectoryMigrationSource): Promise<string[]> {
  return await withMigrationLock(db, async () => await runMigrations(db, source))
}

/** Runs `fn` holding this database's migration lock (see above). */
export async function withMigrationLock<T> (db: Knex, fn: () => Promise<T>): Promise<T> {
  await db.raw('SELECT pg_advisory_lock(?, ?)', [...LOCK_KEY])
  try {
    return await fn()
  } finally {
    await db.raw('SELECT pg_advisory_unlock(?, ?)', [...LOCK_KEY]).catch(() => {})
  }
}

/** knex's migrator to latest; call only under withMigrationLock. */
export async function runMigrations (db: Knex, source: DirectoryMigrationSource): Promise<string[]> {
  await clearStaleKnexLock(db)
  const [, log] = await db.migrate.latest({ migrationSource: source }) as [number, string[]]
  return log
}

/** One round trip: a database that has no lock table yet has nothing to clear. */
async function clearStaleKnexLock (db: Knex): Promise<void> {
  try {
    await db('knex_migrations_lock').where({ is_locked: 1 }).update({ is_locked: 0 })
  } catch (error) {
    if ((error as { code?: string }).code !== UNDEFINED_TABLE) throw error
  }
}

const UNDEFINED_TABLE = '42P01'

/** The newest migration recorded as done, or null; one round trip. */
export async function latestCompletedMigration (db: Knex): Promise<string | null> {
  try {
    const row = await db('knex_migrations').select('name').orderBy('id', 'desc').first() as { name: string } | undefined
    return row?.name ?? null
  } catch (error) {
    if ((error as { code?: string }).code !== UNDEFINED_TABLE) throw error
    return null
  }
}

/** Names of migrations recorded as done; reads only, creates nothing. */
export async function completedMigrations (db: Knex): Promise<string[]> {
  if (!await tableExists(db, 'knex_migrations')) return []
  const rows = await db('knex_migrations').select('name').orderBy('id') as Array<{ name: string }>
  return rows.map((row) => row.name)
}

export async function pendingMigrations (db: Knex, source: DirectoryMigrationSource): Promise<string[]> {
  const done = new Set(await completedMigrations(db))
  return (await source.names()).filter((name) => !done.has(name))
}

async function tableExists (db: Knex, table: string): Promise<boolean> {
  const { rows } = await db.raw<{ rows: Array<{ found: string | null }> }>('SELECT to_regclass(?) AS found', [`public.${table}`])
  return rows[0]?.found != null
}
