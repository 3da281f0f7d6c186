import type pg from 'pg'
import { MIGRATION_TRY_LOCK_SQL } from '../postgres/migrations.js'
import { SchoolAdminError } from './school-admin.js'

/*
 * Operator commands that rebuild a school elsewhere (move, restore) take
 * their locks without waiting: an operator is better told at once that
 * another run has the school than left looking at a command that hangs.
 * npm run migrate keeps waiting for the migration lock, as it always did.
 */

/** Another run holds the school; nothing was changed. */
export class SchoolBusy extends SchoolAdminError {
  override name = 'SchoolBusy'
}

/** Takes the school's migration lock on `client`, a connection to its database, for as long as that session lasts. */
export async function holdMigrationLock (client: pg.Client, slug: string): Promise<void> {
  const { rows } = await client.query<{ locked: boolean }>(MIGRATION_TRY_LOCK_SQL)
  if (rows[0]?.locked !== true) {
    throw new SchoolBusy(`School "${slug}" is being migrated, moved or restored by another run (it holds the school's migration lock); ` +
      'try again once that run is done')
  }
}

const RESTORE_LOCK = 7_311_002

/** One restore at a time per slug: taken on a catalog connection, for as long as that session lasts. */
export async function holdRestoreLock (client: pg.Client, slug: string): Promise<void> {
  const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [RESTORE_LOCK, slug])
  if (rows[0]?.locked !== true) throw new SchoolBusy(`Another restore of "${slug}" is running; try again once it is done`)
}
