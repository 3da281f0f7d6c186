import type { Knex } from 'knex'
import type { LunchDay, LunchWeek, LunchWeekWithDays } from './schemas.js'

// pg returns bigint columns as strings, which are the API's ids as they are.
interface WeekRow { id: string, week_of: string, is_published: boolean, created_at: Date, updated_at: Date }
interface DayRow { id: string, lunch_week_id: string, day: string, menu_details: string }

const toWeek = (row: WeekRow): LunchWeek => ({
  id: row.id,
  weekOf: row.week_of,
  isPublished: row.is_published,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString()
})

const toDay = (row: DayRow): LunchDay => ({ id: row.id, day: row.day, menuDetails: row.menu_details })

/** Monday to Friday of the week starting on `monday` (YYYY-MM-DD). */
export function weekdaysOf (monday: string): string[] {
  const start = Date.parse(`${monday}T00:00:00Z`)
  return [0, 1, 2, 3, 4].map((offset) => new Date(start + offset * 86_400_000).toISOString().slice(0, 10))
}

interface WeekWithDaysRow extends WeekRow { days: Array<{ id: string, day: string, menu_details: string }> }

/*
 * A week and its days are read in one statement. Two queries could straddle
 * a concurrent DELETE and answer with a week that has no days, a state that
 * never existed. The days' ids are cast to text inside the JSON: as JSON
 * numbers, bigints past 2^53 would be rounded when parsed.
 */
function selectWeeksWithDays (db: Knex | Knex.Transaction) {
  return db('lunch_week as w')
    .select('w.*', db.raw(`coalesce(json_agg(json_build_object('id', d.id::text, 'day', d.day, 'menu_details', d.menu_details) ORDER BY d.day)
      FILTER (WHERE d.id IS NOT NULL), '[]') AS days`))
    .leftJoin('lunch_day as d', 'd.lunch_week_id', 'w.id')
    .groupBy('w.id')
}

const toWeekWithDays = (row: WeekWithDaysRow): LunchWeekWithDays => ({
  ...toWeek(row),
  days: row.days.map((day) => ({ id: day.id, day: day.day, menuDetails: day.menu_details }))
})

/** What a write did to a week, told to the caller before its transaction commits. */
export interface WeekWrite {
  weekOf: string
  /** The week is or was published, so the public page may show something else now. */
  touchesPublic: boolean
}

export interface WriteOptions {
  /** Runs inside the write's transaction, just before COMMIT; throwing rolls the write back. */
  beforeCommit?: (write: WeekWrite) => Promise<void>
}

/** Lunch weeks and days of one school's database; the caller picks the database. */
export function lunchWeeks (db: Knex) {
  async function findWithDays (where: Record<string, unknown>, trx: Knex | Knex.Transaction = db): Promise<LunchWeekWithDays | null> {
    const row = await selectWeeksWithDays(trx).where(where).first() as WeekWithDaysRow | undefined
    return row === undefined ? null : toWeekWithDays(row)
  }

  return {
    async list (): Promise<LunchWeek[]> {
      return (await db<WeekRow>('lunch_week').orderBy('week_of', 'desc')).map(toWeek)
    },

    async get (id: string): Promise<LunchWeekWithDays | null> {
      return await findWithDays({ 'w.id': id })
    },

    async getPublished (weekOf: string): Promise<LunchWeekWithDays | null> {
      return await findWithDays({ 'w.week_of': weekOf, 'w.is_published': true })
    },

    /** Every published week with its days, oldest first. */
    async listPublished (): Promise<LunchWeekWithDays[]> {
      const rows = await selectWeeksWithDays(db).where({ 'w.is_published': true }).orderBy('w.week_of') as WeekWithDaysRow[]
      return rows.map(toWeekWithDays)
    },

    /** The week and its five weekdays, in one transaction; null if the week exists. */
    async create (weekOf: string): Promise<LunchWeekWithDays | null> {
      return await db.transaction(async (trx) => {
        const [row] = await trx<WeekRow>('lunch_week').insert({ week_of: weekOf }).onConflict('week_of').ignore().returning('id')
        if (row === undefined) return null
        await trx('lunch_day').insert(weekdaysOf(weekOf).map((day) => ({ lunch_week_id: row.id, day, menu_details: '' })))
        return await findWithDays({ 'w.id': row.id }, trx)
      })
    },

    async setPublished (id: string, isPublished: boolean, options: WriteOptions = {}): Promise<LunchWeekWithDays | null> {
      // The UPDATE's row lock holds off a concurrent DELETE until the read is done.
      return await db.transaction(async (trx) => {
        const updated = await trx('lunch_week').where({ id }).update({ is_published: isPublished, updated_at: trx.fn.now() })
        const week = updated === 0 ? null : await findWithDays({ 'w.id': id }, trx)
        // Publishing or unpublishing: either way the public page may change.
        if (week !== null) await options.beforeCommit?.({ weekOf: week.weekOf, touchesPublic: true })
        return week
      })
    },

    /** True when the week existed. */
    async remove (id: string, options: WriteOptions = {}): Promise<boolean> {
      return await db.transaction(async (trx) => {
        const [row] = await trx<WeekRow>('lunch_week').where({ id }).delete().returning(['week_of', 'is_published'])
        if (row === undefined) return false
        await options.beforeCommit?.({ weekOf: row.week_of, touchesPublic: row.is_published })
        return true
      })
    },

    /** Null when the week has no such day (or there is no such week). */
    async updateDay (weekId: string, dayId: string, menuDetails: string, options: WriteOptions = {}): Promise<LunchDay | null> {
      // The week's row first, as a DELETE of the week locks it before its
      // days: locked the other way round, the two could deadlock.
      return await db.transaction(async (trx) => {
        const [week] = await trx<WeekRow>('lunch_week')
          .where({ id: weekId })
          .whereExists((q) => { void q.select(trx.raw('1')).from('lunch_day').where({ id: dayId, lunch_week_id: weekId }) })
          .update({ updated_at: trx.fn.now() })
          .returning(['week_of', 'is_published'])
        if (week === undefined) return null
        // Days go only with their week, whose row this transaction holds now.
        const [row] = await trx<DayRow>('lunch_day').where({ id: dayId, lunch_week_id: weekId }).update({ menu_details: menuDetails }).returning('*')
        if (row === undefined) return null
        await options.beforeCommit?.({ weekOf: week.week_of, touchesPublic: week.is_published })
        return toDay(row as DayRow)
      })
    }
  }
}
