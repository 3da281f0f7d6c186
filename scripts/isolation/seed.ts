import { mondayOf } from './calendar.js'
import type { Fleet } from './plan.js'
import type { KnownWeek, SchoolState, WeekBody } from './types.js'

/**
 * Gives a school its first `weeks` Mondays, each with a menu on every day:
 * the first published for good (the public page must find it), the last a
 * draft when there are two or more, the rest published. Weeks left by an
 * earlier run are reused.
 */
export async function seedSchool (fleet: Fleet, school: SchoolState, weeks: number): Promise<void> {
  const { checks } = fleet
  const headers = { authorization: `Bearer ${fleet.tokens.single(school.slug, fleet.tokens.subject())}` }
  const jsonHeaders = { ...headers, 'content-type': 'application/json' }
  const fail = (what: string): never => { throw new Error(`seeding ${school.slug}: ${what}`) }

  const listed = await checks.perform('seed', { method: 'GET', url: '/api/lunch-weeks', headers }, checks.listExpectation(school), 'single')
  if (!listed.ok) fail(`listing failed (${listed.status})`)
  for (const week of listed.body as WeekBody[]) checks.learn(school, week)

  for (let k = 0; k < weeks; k++) {
    const monday = mondayOf(school.index, k)
    const existing = [...school.weeks.values()].find((w) => w.weekOf === monday && !w.deleted)
    const res = existing === undefined
      ? await checks.perform('seed', { method: 'POST', url: '/api/lunch-weeks', headers: jsonHeaders, payload: JSON.stringify({ weekOf: monday }) },
        checks.weekExpectation('create', school, [201]), 'single')
      : await checks.perform('seed', { method: 'GET', url: `/api/lunch-weeks/${existing.id}`, headers }, checks.weekExpectation('get', school, [200], { id: existing.id }), 'single')
    if (!res.ok) fail(`week ${monday} (${res.status})`)
    const week = school.weeks.get(Number((res.body as WeekBody).id)) as KnownWeek
    week.seed = true
    week.pinned = k === 0
    for (const dayId of week.days) {
      const menuDetails = fleet.nextMenu(school.slug)
      const patched = await checks.perform('seed', {
        method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${dayId}`, headers: jsonHeaders, payload: JSON.stringify({ menuDetails })
      }, { operation: 'menu', statuses: [200], owner: school.slug, check: (body) => (body as { menuDetails?: unknown }).menuDetails === menuDetails ? [] : ['menu not saved'] }, 'single')
      if (!patched.ok) fail(`menu of day ${dayId} (${patched.status})`)
    }
    const isPublished = k === 0 || k < weeks - 1
    const published = await checks.perform('seed', {
      method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, headers: jsonHeaders, payload: JSON.stringify({ isPublished })
    }, checks.weekExpectation('publish', school, [200], { id: week.id }), 'single')
    if (!published.ok) fail(`publishing ${monday} (${published.status})`)
  }
}
