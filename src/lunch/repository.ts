import type { Knex } from 'knex'

export interface LunchDay {
  id: number
  day: string
  menuDetails: string
}

export interface LunchWeek {
  id: number
  weekOf: string
  isPublished: boolean
  createdAt: string
  updatedAt: string
}

export interface LunchWeekWithDays extends LunchWeek {
  days: LunchDay[]
}

interface WeekRow { id: string, week_of: string, is_published: boolean, created_at: Date, updated_at: Date }
interface DayRow { id: string, lunch_week_id: string | number, day: string, menu_details: string }

const toWeek = (row: WeekRow): LunchWeek => ({
  id: Number(row.id),
  weekOf: row.week_of,
  isPublished: row.is_published,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString()
})

const toDay = (row: DayRow): LunchDay => ({ id: Number(row.id), day: row.day, menuDetails: row.menu_details })

/** Monday to Friday of the week starting on `monday` (YYYY-MM-DD). */
export function weekdaysOf (monday: string): string[] {
  const start = Date.parse(`${monday}T00:00:00Z`)
  return [0, 1, 2, 3, 4].map((offset) => new Date(start + offset * 86_400_000).toISOString().slice(0, 10))
}

/** Lunch weeks and days of one school's database; the caller picks the database. */
export function lunchWeeks (db: Knex) {
  async function withDays (week: LunchWeek, trx: Knex | Knex.Transaction = db): Promise<LunchWeekWithDays> {
    const days = await trx<DayRow>('lunch_day').where({ lunch_week_id: week.id }).orderBy('day')
    return { ...week, days: days.map(toDay) }
  }

  return {
    async list (): Promise<LunchWeek[]> {
      return (await db<WeekRow>('lunch_week').orderBy('week_of', 'desc')).map(toWeek)
    },

    async get (id: string): Promise<LunchWeekWithDays | null> {
      const row = await db<WeekRow>('lunch_week').where({ id }).first()
      return row === undefined ? null : await withDays(toWeek(row))
    },

    async getPublished (weekOf: string): Promise<LunchWeekWithDays | null> {
      const row = await db<WeekRow>('lunch_week').where({ week_of: weekOf, is_published: true }).first()
      return row === undefined ? null : await withDays(toWeek(row))
    },

    /** The week and its five weekdays, in one transaction; null if the week exists. */
    async create (weekOf: string): Promise<LunchWeekWithDays | null> {
      return await db.transaction(async (trx) => {
        const [row] = await trx<WeekRow>('lunch_week').insert({ week_of: weekOf }).onConflict('week_of').ignore().returning('*')
        if (row === undefined) return null
        await trx('lunch_day').insert(weekdaysOf(weekOf).map((day) => ({ lunch_week_id: row.id, day, menu_details: '' })))
        return await withDays(toWeek(row), trx)
      })
    },

    async setPublished (id: string, isPublished: boolean): Promise<LunchWeekWithDays | null> {
      const [row] = await db<WeekRow>('lunch_week').where({ id }).update({ is_published: isPublished, updated_at: db.fn.now() }).returning('*')
      return row === undefined ? null : await withDays(toWeek(row as WeekRow))
    },

    async remove (id: string): Promise<boolean> {
      return await db('lunch_week').where({ id }).delete() > 0
    },

    /** Null when the week has no such day (or there is no such week). */
    async updateDay (weekId: string, dayId: string, menuDetails: string): Promise<LunchDay | null> {
      return await db.transaction(async (trx) => {
        const [row] = await trx<DayRow>('lunch_day').where({ id: dayId, lunch_week_id: weekId }).update({ menu_details: menuDetails }).returning('*')
        if (row === undefined) return null
        await trx('lunch_week').where({ id: weekId }).update({ updated_at: trx.fn.now() })
        return toDay(row as DayRow)
      })
    }
  }
}
