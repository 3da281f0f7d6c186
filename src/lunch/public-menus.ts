import type { Knex } from 'knex'
import type { LunchWeekWithDays } from './schemas.js'

/*
 * The public read model: a copy of each school's published weeks in the
 * catalog (public_lunch_weeks), so anonymous readers never reach a school
 * database.
 *
 * A staff write and its copy are two databases, so they are kept together
 * by a note in the catalog (public_lunch_pending) written inside the school's
 * transaction, just before its COMMIT: if the note cannot be written, the
 * school write rolls back. Once the school write has committed, the copy of
 * the week is written from a fresh read of the school database and the note
 * is removed. If that fails, or the process dies first, the note stays, and
 * the repairer later copies every published week of that school afresh.
 *
 * Copies of one school are written under one advisory lock, each from a read
 * of the school database made while holding it. So the last copy written
 * was read after every write whose own copy came before it: copies written
 * out of order cannot leave an older menu behind. The lock is taken in the
 * school database, before any catalog connection is asked for: a staff
 * write holds its school connection while it writes its note to the
 * catalog, so a copy that held a catalog connection while it waited for a
 * school connection could wait on it for ever, once the school's pool
 * cannot grow.
 */

// Advisory lock namespace of a school's public copies; 7_311_001 is the migrations'.
const COPY_LOCK = 7_311_002
// A staff request waits this long at most for a repair of its school.
const COPY_LOCK_TIMEOUT = '5s'

export interface PublishedWeeks {
  /** Mondays the school has published within `windowYears` of today, as YYYY-MM-DD. */
  weeks: string[]
  /** The school has a note older than the stale bound: its copies may be behind. */
  stale: boolean
}

export interface PendingSchool {
  id: number
  slug: string
  databaseName: string
  server: string
}

interface PendingRow { school_id: string | number, slug: string, database_name: string, server: string }

/** What reads a school's weeks, given the connection that holds its copy lock. */
type ReadWith<T> = (school: Knex) => Promise<T>

/** Writes copies of `weeks`, new or over the old ones, stamped now. */
async function upsertCopies (trx: Knex.Transaction, schoolId: number, weeks: LunchWeekWithDays[]): Promise<void> {
  if (weeks.length === 0) return
  await trx('public_lunch_weeks')
    .insert(weeks.map((week) => ({ school_id: schoolId, week_of: week.weekOf, week })))
    .onConflict(['school_id', 'week_of']).merge(['week', 'copied_at'])
}

/** The school's copies become exactly `weeks`: new and changed ones written, the rest dropped. */
async function replaceCopies (trx: Knex.Transaction, schoolId: number, weeks: LunchWeekWithDays[]): Promise<void> {
  await trx('public_lunch_weeks').where({ school_id: schoolId }).whereNotIn('week_of', weeks.map((week) => week.weekOf)).delete()
  await upsertCopies(trx, schoolId, weeks)
}

/**
 * The week as the public page shows it, in a fixed key order whatever jsonb
 * did to it. Copies written before ids were strings hold numbers.
 */
function toPublicWeek (stored: LunchWeekWithDays): LunchWeekWithDays {
  return {
    id: String(stored.id),
    weekOf: stored.weekOf,
    isPublished: stored.isPublished,
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
    days: stored.days.map((day) => ({ id: String(day.id), day: day.day, menuDetails: day.menuDetails }))
  }
}

/** The public copies' store, as its users see it. */
export type PublicCopies = Pick<PublicCopyStore, 'publishedWeeks' | 'week' | 'markPending' | 'copyWeek' | 'pendingSchools' | 'copySchool' | 'copyAllWeeks'>

/** The catalog's public copies and pending notes. */
export function publicCopies (catalog: Knex): PublicCopies {
  return new PublicCopyStore(catalog)
}

/** Runs `fn` in a transaction of the school database that holds the school's copy lock; null when `wait` is false and it is held. */
async function underLock<T> (schoolDb: Knex, wait: boolean, fn: (school: Knex.Transaction) => Promise<T>): Promise<T | null> {
  return await schoolDb.transaction(async (school) => {
    if (wait) {
      await school.raw(`SET LOCAL lock_timeout = '${COPY_LOCK_TIMEOUT}'`)
      await school.raw('SELECT pg_advisory_xact_lock(?, 0)', [COPY_LOCK])
    } else {
      const { rows } = await school.raw<{ rows: Array<{ locked: boolean }> }>('SELECT pg_try_advisory_xact_lock(?, 0) AS locked', [COPY_LOCK])
      if (rows[0]?.locked !== true) return null
    }
    return await fn(school)
  })
}

class PublicCopyStore {
  constructor (private readonly catalog: Knex) {}

  /**
   * Which weeks a school publishes (near today), and whether its copies
   * may be older than `staleAfterMs`: one round trip answers every
   * unpublished week of the school.
   */
  async publishedWeeks (schoolId: number, windowYears: number, staleAfterMs: number, timeoutMs: number): Promise<PublishedWeeks> {
    const { rows } = await this.catalog.raw<{ rows: Array<{ weeks: string[], stale: boolean }> }>(`
      SELECT coalesce((SELECT array_agg(week_of::text) FROM public_lunch_weeks
                       WHERE school_id = ? AND week_of BETWEEN current_date - make_interval(years => ?, days => 7)
                                                           AND current_date + make_interval(years => ?, days => 7)), '{}') AS weeks,
             EXISTS (SELECT 1 FROM public_lunch_pending
                     WHERE school_id = ? AND created_at < now() - make_interval(secs => ?)) AS stale`,
    [schoolId, windowYears, windowYears, schoolId, staleAfterMs / 1000]).timeout(timeoutMs, { cancel: true })
    return { weeks: rows[0]?.weeks ?? [], stale: rows[0]?.stale === true }
  }

  /** One school's copy of a week; null when there is none. */
  async week (schoolId: number, weekOf: string, timeoutMs: number): Promise<LunchWeekWithDays | null> {
    const row = await this.catalog('public_lunch_weeks').where({ school_id: schoolId, week_of: weekOf }).first('week')
      .timeout(timeoutMs, { cancel: true }) as { week: LunchWeekWithDays } | undefined
    return row === undefined ? null : toPublicWeek(row.week)
  }

  /** Notes that a write of the school may change its copies; returns the note's id. */
  async markPending (schoolId: number, timeoutMs = 2_000): Promise<number> {
    const [row] = await this.catalog('public_lunch_pending').insert({ school_id: schoolId }).returning('id').timeout(timeoutMs, { cancel: true })
    return Number((row as { id: string | number }).id)
  }

  /**
   * Copies one week from a fresh read of the school (`readWeek`) and
   * removes the write's note. Waits for the school's lock.
   */
  async copyWeek (schoolDb: Knex, schoolId: number, weekOf: string, readWeek: ReadWith<LunchWeekWithDays | null>, pendingId: number): Promise<void> {
    await this.copyUnderLock(schoolDb, readWeek, async (trx, week) => {
      if (week === null) await trx('public_lunch_weeks').where({ school_id: schoolId, week_of: weekOf }).delete()
      else await upsertCopies(trx, schoolId, [week])
    }, pendingId)
  }

  /** Schools with a note older than `olderThanMs`, oldest note first, leaving out `skip`. */
  async pendingSchools (olderThanMs: number, limit: number, skip: number[] = []): Promise<PendingSchool[]> {
    const { rows } = await this.catalog.raw<{ rows: PendingRow[] }>(`
      SELECT p.school_id, s.slug, s.database_name, s.server
      FROM public_lunch_pending p JOIN schools s ON s.id = p.school_id
      WHERE p.created_at < now() - make_interval(secs => ?) AND p.school_id <> ALL(?::bigint[])
      GROUP BY p.school_id, s.slug, s.database_name, s.server
      ORDER BY min(p.created_at)
      LIMIT ?`, [olderThanMs / 1000, `{${skip.map((id) => Math.trunc(id)).join(',')}}`, limit])
    return rows.map((row) => ({ id: Number(row.school_id), slug: row.slug, databaseName: row.database_name, server: row.server }))
  }

  /**
   * Copies every published week of a school afresh (`readWeeks`), drops
   * copies of weeks no longer published, and removes the notes older than
   * `olderThanMs`: their writes have committed or failed long since.
   * False, without reading the school, when another process is at it or
   * someone else has already done it.
   */
  async copySchool (schoolId: number, openSchool: () => Knex, readWeeks: ReadWith<LunchWeekWithDays[]>, olderThanMs: number): Promise<boolean> {
    // now() is fixed for the whole transaction: one cutoff for the check and the delete.
    const old = (db: Knex): Knex.QueryBuilder => db('public_lunch_pending').where({ school_id: schoolId })
      .where('created_at', '<', db.raw('now() - make_interval(secs => ?)', [olderThanMs / 1000]))
    // Asked before the school is connected to: most passes find nothing to do.
    if (await old(this.catalog).first('id') === undefined) return false
    const done = await underLock(openSchool(), false, async (school) => {
      const weeks = await readWeeks(school)
      return await this.catalog.transaction(async (trx) => {
        if (await old(trx).first('id') === undefined) return false
        await replaceCopies(trx, schoolId, weeks)
        await old(trx).delete()
        return true
      })
    })
    return done === true
  }

  /**
   * Copies every published week of a school afresh after a write that
   * took its note (`pendingId`) and may have changed any week, such as a
   * task run across schools. Waits for the school's lock.
   */
  async copyAllWeeks (schoolDb: Knex, schoolId: number, readWeeks: ReadWith<LunchWeekWithDays[]>, pendingId: number): Promise<void> {
    await this.copyUnderLock(schoolDb, readWeeks, async (trx, weeks) => { await replaceCopies(trx, schoolId, weeks) }, pendingId)
  }

  /**
   * Waits for the school's lock, reads with `read` while holding it, then
   * writes with `write` and removes the note `pendingId` in one catalog
   * transaction.
   */
  private async copyUnderLock<T> (schoolDb: Knex, read: ReadWith<T>, write: (trx: Knex.Transaction, data: T) => Promise<void>, pendingId: number): Promise<void> {
    await underLock(schoolDb, true, async (school) => {
      const data = await read(school)
      await this.catalog.transaction(async (trx) => {
        await write(trx, data)
        await trx('public_lunch_pending').where({ id: pendingId }).delete()
      })
    })
  }
}
