/*
 * How a leak is recognised by date: school number i owns its own range of
 * Mondays (weekOf values never shared between schools), so any week or day
 * in a body tells whose it is.
 */

const WEEK_MS = 7 * 86_400_000
const DAY_MS = 86_400_000
/** Mondays each school owns; seeds take the first ones, creates pick among all. */
export const MONDAYS_PER_SCHOOL = 12
/** 2030-01-07, a Monday: school i owns the MONDAYS_PER_SCHOOL Mondays from BASE + i × 12 weeks. */
const BASE_MONDAY_MS = Date.UTC(2030, 0, 7)

/** The k-th Monday (0-based) owned by school number `index`. */
export function mondayOf (index: number, k: number): string {
  return new Date(BASE_MONDAY_MS + (index * MONDAYS_PER_SCHOOL + k) * WEEK_MS).toISOString().slice(0, 10)
}

/** The school (of `slugs`, in their order) a plain date belongs to, or null when it is no school's. */
export function ownerOfDate (slugs: readonly string[], date: string): string | null {
  const ms = Date.parse(`${date}T00:00:00Z`)
  if (Number.isNaN(ms)) return null
  const offset = ms - BASE_MONDAY_MS
  if (offset < 0) return null
  const dayInWeek = Math.floor(offset / DAY_MS) % 7
  if (dayInWeek > 4) return null
  const index = Math.floor(Math.floor(offset / WEEK_MS) / MONDAYS_PER_SCHOOL)
  return slugs[index] ?? null
}
