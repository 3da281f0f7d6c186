import type { Knex } from 'knex'
import { MIGRATION_XACT_LOCK_SQL, type DirectoryMigrationSource } from '../postgres/migrations.js'

/*
 * The common case of a rollout or a rollback, a school exactly where the
 * catalog says, done without knex's migrator: its checks of its own tables
 * (a dozen catalog queries, costly on a backend that has just started) are
 * most of what such a run costs PostgreSQL. Here the school's migrations,
 * their history rows and its grants go in one transaction under the
 * migration lock.
 *
 * Anything unusual is left to the general path, which knex runs: a history
 * the step will not take, knex's lock row set, a migration that asks to run
 * outside a transaction, or any error at all. The transaction then rolls
 * back, so the general path starts from where the school was (and a
 * failing migration fails again there, reported as usual).
 */

/** What to run, given the school's history (oldest first); null, or a throw, leaves the school to the general path. */
export type StepOf = (history: string[]) => { direction: 'up' | 'down', names: string[] } | null

export interface StepDone {
  /** The migrations run (up, oldest first) or undone (down, newest first). */
  names: string[]
  /** The newest migration the school records now; null for none. */
  latest: string | null
}

/**
 * The school's step in one transaction; null, having changed nothing, when
 * the general path must do the school. `grants` are statements without
 * parameters run at the end.
 */
export async function migrateInOneTransaction (db: Knex, source: DirectoryMigrationSource, stepOf: StepOf, grants: readonly string[]): Promise<StepDone | null> {
  const files = new Map((await source.getMigrations()).map((file) => [file.name, file]))
  try {
    return await db.transaction(async (trx) => {
      // Its own statement: the history read next must see what the last holder of the lock committed.
      await trx.raw(MIGRATION_XACT_LOCK_SQL)
      const { rows: [history] } = await trx.raw<{ rows: Array<{ names: string[], batch: number, locked: boolean | null }> }>(
        `SELECT coalesce(array_agg(name::text ORDER BY id), '{}') AS names, coalesce(max(batch), 0) AS batch,
                (SELECT bool_or(is_locked <> 0) FROM knex_migrations_lock) AS locked
         FROM knex_migrations`)
      if (history === undefined || history.locked === true) throw new Error("knex's lock row is set")
      const step = stepOf(history.names)
      if (step === null) throw new Error('not a history this path takes')
      const modules = []
      for (const name of step.names) {
        const file = files.get(name)
        if (file === undefined) throw new Error(`no migration ${name}`)
        const module = await source.getMigration(file) as Knex.Migration & { config?: { transaction?: boolean } }
        // knex runs such a migration outside any transaction; so must we, and only it does that.
        if (module.config?.transaction === false) throw new Error(`${name} runs outside a transaction`)
        modules.push(module)
      }
      if (step.direction === 'up') {
        for (const module of modules) await module.up(trx)
        // As knex records a run: one batch number for all of it.
        const migrationTime = new Date()
        if (step.names.length > 0) await trx('knex_migrations').insert(step.names.map((name) => ({ name, batch: history.batch + 1, migration_time: migrationTime })))
      } else {
        for (const [i, module] of modules.entries()) {
          if (module.down === undefined) throw new Error(`${step.names[i]} cannot be undone`)
          await module.down(trx)
        }
        if (step.names.length > 0) await trx('knex_migrations').whereIn('name', step.names).delete()
      }
      await trx.raw(grants.join(';\n'))
      const now = step.direction === 'up' ? [...history.names, ...step.names] : history.names.filter((name) => !step.names.includes(name))
      return { names: step.names, latest: now.at(-1) ?? null }
    })
  } catch {
    return null
  }
}
