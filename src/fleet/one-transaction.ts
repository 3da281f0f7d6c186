import type { Knex } from 'knex'
import { MIGRATION_XACT_LOCK_SQL, type DirectoryMigrationSource } from '../postgres/migrations.js'

/*
 * A rollout's common case, a school exactly where the catalog says, a few
 * migrations behind, done without knex's migrator: its checks of its own
 * tables (a dozen catalog queries, costly on a backend that has just
 * started) are most of what a rollout costs PostgreSQL. Here the school's
 * pending migrations, their history rows and its grants go in one
 * transaction under the migration lock.
 *
 * Anything unusual is left to the general path, which knex runs: a history
 * that is not the expected one, knex's lock row set, a migration that asks
 * to run outside a transaction, or any error at all. The transaction then
 * rolls back, so the general path starts from where the school was (and a
 * failing migration fails again there, reported as usual).
 */

export interface PendingWork {
  /** The migrations the school's history must hold, in order. */
  done: readonly string[]
  /** The migrations to run, in order. */
  pending: readonly string[]
  /** Statements without parameters run after the migrations (the role's grants). */
  grants: readonly string[]
}

/** True when the pending migrations ran and were recorded; false, having changed nothing, when the general path must do it. */
export async function migrateInOneTransaction (db: Knex, source: DirectoryMigrationSource, work: PendingWork): Promise<boolean> {
  const files = new Map((await source.getMigrations()).map((file) => [file.name, file]))
  const modules: Array<Knex.Migration & { config?: { transaction?: boolean } }> = []
  for (const name of work.pending) {
    const file = files.get(name)
    if (file === undefined) return false
    modules.push(await source.getMigration(file))
  }
  // knex runs such a migration outside any transaction; so must we, and only it does that.
  if (modules.some((module) => module.config?.transaction === false)) return false
  try {
    await db.transaction(async (trx) => {
      // Its own statement: the history read next must see what the last holder of the lock committed.
      await trx.raw(MIGRATION_XACT_LOCK_SQL)
      const { rows: [history] } = await trx.raw<{ rows: Array<{ names: string[], batch: number, locked: boolean | null }> }>(
        `SELECT coalesce(array_agg(name::text ORDER BY id), '{}') AS names, coalesce(max(batch), 0) AS batch,
                (SELECT bool_or(is_locked <> 0) FROM knex_migrations_lock) AS locked
         FROM knex_migrations`)
      if (history === undefined || history.locked === true || !sameList(history.names, work.done)) throw new Error('not the expected history')
      for (const module of modules) await module.up(trx)
      // As knex records a run: one batch number for all of it.
      const migrationTime = new Date()
      await trx('knex_migrations').insert(work.pending.map((name) => ({ name, batch: history.batch + 1, migration_time: migrationTime })))
      await trx.raw(work.grants.join(';\n'))
    })
    return true
  } catch {
    return false
  }
}

function sameList (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i])
}
