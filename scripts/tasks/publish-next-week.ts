/*
 * npm run schools -- exec scripts/tasks/publish-next-week.ts
 *
 * Publishes the lunch week of next Monday in every school that has one and
 * has not published it yet. Running it twice publishes nothing new.
 */
import type { SchoolTaskContext } from '../../src/fleet/for-each-school.js'

/** The Monday after today (a week ahead when today is a Monday), as YYYY-MM-DD in local time. */
export function nextMonday (today = new Date()): string {
  const daysAhead = (8 - today.getDay()) % 7 || 7
  const monday = new Date(today.getFullYear(), today.getMonth(), today.getDate() + daysAhead)
  return `${monday.getFullYear()}-${String(monday.getMonth() + 1).padStart(2, '0')}-${String(monday.getDate()).padStart(2, '0')}`
}

export default async function publishNextWeek ({ db }: SchoolTaskContext): Promise<string> {
  const weekOf = nextMonday()
  const published = await db('lunch_week').where({ week_of: weekOf, is_published: false })
    .update({ is_published: true, updated_at: db.fn.now() })
  if (published > 0) return `published the week of ${weekOf}`
  const week = await db('lunch_week').where({ week_of: weekOf }).first('id')
  return week === undefined ? `no week of ${weekOf}` : `the week of ${weekOf} was already published`
}
