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
 * out of order cannot leave an older menu behind.
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

const lockKey = (schoolId: number): number => schoolId % 2_147_483_647

/** The school's copies become exactly `weeks`: new and changed ones written, the rest dropped. */
async function replaceCopies (trx: Knex.Transaction, schoolId: number, weeks: LunchWeekWithDays[]): Promise<void> {
  await trx('public_lunch_weeks').where({ school_id: schoolId }).whereNotIn('week_of', weeks.map((week) => week.weekOf)).delete()
  if (weeks.length === 0) return
  await trx('public_lunch_weeks')
    .insert(weeks.map((week) => ({ school_id: schoolId, week_of: week.weekOf, week })))
    .onConflict(['school_id', 'week_of']).merge(['week', 'copied_at'])
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

export type PublicCopies = ReturnType<typeof publicCopies>

/** The catalog's public copies and pending notes. */
export function publicCopies (catalog: Knex) {
  async function lock (trx: Knex.Transaction, schoolId: number, wait: boolean): Promise<boolean> {
    if (wait) {
      await trx.raw(`SET LOCAL lock_timeout = '${COPY_LOCK_TIMEOUT}'`)
      await trx.raw('SELECT pg_advisory_xact_lock(?, ?)', [COPY_LOCK, lockKey(schoolId)])
      return true
    }
    const { rows } = await trx.raw<{ rows: Array<{ locked: boolean }> }>('SELECT pg_try_advisory_xact_lock(?, ?) AS locked', [COPY_LOCK, lockKey(schoolId)])
    return rows[0]?.locked === true
  }

  return {
    /**
     * Which weeks a school publishes (near today), and whether its copies
     * may be older than `staleAfterMs`: one round trip answers every
     * unpublished week of the school.
     */
    async publishedWeeks (schoolId: number, windowYears: number, staleAfterMs: number, timeoutMs: number): Promise<PublishedWeeks> {
      const { rows } = await catalog.raw<{ rows: Array<{ weeks: string[], stale: boolean }> }>(`
        SELECT coalesce((SELECT array_agg(week_of::text) FROM public_lunch_weeks
                         WHERE school_id = ? AND week_of BETWEEN current_date - make_interval(years => ?, days => 7)
                                                             AND current_date + make_interval(years => ?, days => 7)), '{}') AS weeks,
               EXISTS (SELECT 1 FROM public_lunch_pending
                       WHERE school_id = ? AND created_at < now() - make_interval(secs => ?)) AS stale`,
      [schoolId, windowYears, windowYears, schoolId, staleAfterMs / 1000]).timeout(timeoutMs, { cancel: true })
      return { weeks: rows[0]?.weeks ?? [], stale: rows[0]?.stale === true }
    },

    /** One school's copy of a week; null when there is none. */
    async week (schoolId: number, weekOf: string, timeoutMs: number): Promise<LunchWeekWithDays | null> {
      const row = await catalog('public_lunch_weeks').where({ school_id: schoolId, week_of: weekOf }).first('week')
        .timeout(timeoutMs, { cancel: true }) as { week: LunchWeekWithDays } | undefined
      return row === undefined ? null : toPublicWeek(row.week)
    },

    /** Notes that a write of the school may change its copies; returns the note's id. */
    async markPending (schoolId: number, timeoutMs = 2_000): Promise<number> {
      const [row] = await catalog('public_lunch_pending').insert({ school_id: schoolId }).returning('id').timeout(timeoutMs, { cancel: true })
      return Number((row as { id: string | number }).id)
    },

    /**
     * Copies one week from a fresh read of the school (`readWeek`) and
     * removes the write's note. Waits for the school's lock.
     */
    async copyWeek (schoolId: number, weekOf: string, readWeek: () => Promise<LunchWeekWithDays | null>, pendingId: number): Promise<void> {
      await catalog.transaction(async (trx) => {
        await lock(trx, schoolId, true)
        const week = await readWeek()
        if (week === null) {
          await trx('public_lunch_weeks').where({ school_id: schoolId, week_of: weekOf }).delete()
        } else {
          await trx('public_lunch_weeks').insert({ school_id: schoolId, week_of: weekOf, week })
            .onConflict(['school_id', 'week_of']).merge({ week, copied_at: trx.fn.now() })
        }
        await trx('public_lunch_pending').where({ id: pendingId }).delete()
      })
    },

    /** Schools with a note older than `olderThanMs`, oldest note first, leaving out `skip`. */
    async pendingSchools (olderThanMs: number, limit: number, skip: number[] = []): Promise<PendingSchool[]> {
      const { rows } = await catalog.raw<{ rows: PendingRow[] }>(`
        SELECT p.school_id, s.slug, s.database_name, s.server
        FROM public_lunch_pending p JOIN schools s ON s.id = p.school_id
        WHERE p.created_at < now() - make_interval(secs => ?) AND p.school_id <> ALL(?::bigint[])
        GROUP BY p.school_id, s.slug, s.database_name, s.server
        ORDER BY min(p.created_at)
        LIMIT ?`, [olderThanMs / 1000, `{${skip.map((id) => Math.trunc(id)).join(',')}}`, limit])
      return rows.map((row) => ({ id: Number(row.school_id), slug: row.slug, databaseName: row.database_name, server: row.server }))
    },

    /**
     * Copies every published week of a school afresh (`readWeeks`), drops
     * copies of weeks no longer published, and removes the notes older than
     * `olderThanMs`: their writes have committed or failed long since.
     * False, without reading the school, when another process is at it or
     * someone else has already done it.
     */
    async copySchool (schoolId: number, readWeeks: () => Promise<LunchWeekWithDays[]>, olderThanMs: number): Promise<boolean> {
      // now() is fixed for the whole transaction: one cutoff for the check and the delete.
      const old = (trx: Knex.Transaction): Knex.QueryBuilder => trx('public_lunch_pending').where({ school_id: schoolId })
        .where('created_at', '<', trx.raw('now() - make_interval(secs => ?)', [olderThanMs / 1000]))
      return await catalog.transaction(async (trx) => {
        if (!await lock(trx, schoolId, false)) return false
        if (await old(trx).first('id') === undefined) return false
        await replaceCopies(trx, schoolId, await readWeeks())
        await old(trx).delete()
        return true
      })
    },

    /**
     * Copies every published week of a school afresh after a write that
     * took its note (`pendingId`) and may have changed any week, such as a
     * task run across schools. Waits for the school's lock.
     */
    async copyAllWeeks (schoolId: number, readWeeks: () => Promise<LunchWeekWithDays[]>, pendingId: number): Promise<void> {
      await catalog.transaction(async (trx) => {
        await lock(trx, schoolId, true)
        await replaceCopies(trx, schoolId, await readWeeks())
        await trx('public_lunch_pending').where({ id: pendingId }).delete()
      })
    }
  }
}
