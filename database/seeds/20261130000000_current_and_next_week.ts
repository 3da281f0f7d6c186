/*
 * A new school starts with this week and the next, each with its five
 * weekdays and empty menus, unpublished: staff open the app to a week ready
 * to fill in.
 */
import type { SchoolTaskContext } from '../../src/fleet/for-each-school.js'
import { lunchWeeks } from '../../src/lunch/repository.js'

/** The Monday of the week `today` is in, and the Monday after, as YYYY-MM-DD in local time. */
export function currentAndNextMonday (today = new Date()): [string, string] {
  const back = (today.getDay() + 6) % 7
  const monday = (weeks: number): string => {
    const day = new Date(today.getFullYear(), today.getMonth(), today.getDate() - back + 7 * weeks)
    return `${day.getFullYear()}-${String(day.getMonth() + 1).padStart(2, '0')}-${String(day.getDate()).padStart(2, '0')}`
  }
  return [monday(0), monday(1)]
}

export default async function currentAndNextWeek ({ db }: SchoolTaskContext): Promise<void> {
  const weeks = lunchWeeks(db)
  for (const monday of currentAndNextMonday()) await weeks.create(monday)
}
