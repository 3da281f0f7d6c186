/*
 * npm run schools -- exec scripts/tasks/count-lunch-weeks.ts
 *
 * How many lunch weeks each school has, and how many of them are published.
 * Read-only: safe to run at any time.
 */
import type { SchoolTaskContext } from '../../src/fleet/for-each-school.js'

export default async function countLunchWeeks ({ db }: SchoolTaskContext): Promise<{ weeks: number, published: number }> {
  return await db('lunch_week')
    .first(db.raw('count(*)::int AS weeks'), db.raw('count(*) FILTER (WHERE is_published)::int AS published'))
}
