/*
 * Isolation under concurrency: many schools, thousands of interleaved
 * requests with random tokens, every response checked against the school its
 * token names (or, for the public page, the school in the path).
 *
 * runIsolationCheck() drives any `send` function: the test suite passes one
 * built on app.inject, the command line (scripts/isolation.ts) one built on
 * fetch against a listening server. Week ids are per database and overlap
 * across schools on purpose; ids of other schools are sent too.
 */
import { runConcurrently } from '../../src/fleet/concurrency.js'
import { seededRandom } from '../bench/random.js'
import { createChecks, isWeek } from './checks.js'
import { buildLoadRequest } from './operations.js'
import { drawPlans, type Fleet } from './plan.js'
import { seedSchool } from './seed.js'
import { createTokens } from './tokens.js'
import type { IsolationOptions, IsolationResult, SchoolState, WeekBody } from './types.js'

export * from './types.js'
export { summarizeReasons } from './report.js'

function validate (options: IsolationOptions, seedWeeks: number): void {
  if (options.schools.length < 2) throw new Error('runIsolationCheck needs at least 2 schools')
  if (new Set(options.schools).size !== options.schools.length) throw new Error('school slugs must be distinct')
  if (!Number.isInteger(seedWeeks) || seedWeeks < 1 || seedWeeks > 6) throw new Error('seedWeeks must be 1 to 6')
  if (!Number.isInteger(options.requests) || options.requests < 0) throw new Error('requests must be a whole number')
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new Error('concurrency must be at least 1')
}

function emptyResult (requests: number): IsolationResult {
  return {
    requests, byStatus: {}, leaks: [], unexpected: [], durationMs: 0, byOperation: {}, byTokenShape: {}, writesBySchool: {}, seedRequests: 0, sweepRequests: 0
  }
}

/** Seeds every school, runs the planned load, then reads every school back. */
export async function runIsolationCheck (options: IsolationOptions): Promise<IsolationResult> {
  const seedWeeks = options.seedWeeks ?? 3
  validate(options, seedWeeks)
  const random = seededRandom(options.seed ?? 1)
  const schools: SchoolState[] = options.schools.map((slug, index) => ({ slug, index, weeks: new Map() }))
  const result = emptyResult(options.requests)
  let menus = 0
  const fleet: Fleet = {
    schools,
    bySlug: new Map(schools.map((s) => [s.slug, s])),
    tokens: createTokens(options.token, schools, options.schoolClaim ?? 'school', options.schoolsClaim ?? 'schools'),
    checks: createChecks(options.send, options.schools, result),
    schoolNames: options.schoolNames,
    nextMenu: (slug) => `menu of ${slug} #${++menus}`,
    maxKnownId: 1
  }

  await runConcurrently(schools, options.concurrency, async (school) => { await seedSchool(fleet, school, seedWeeks) })
  for (const school of schools) for (const id of school.weeks.keys()) fleet.maxKnownId = Math.max(fleet.maxKnownId, id)

  const plans = drawPlans(random, options.requests)
  const started = performance.now()
  let done = 0
  await runConcurrently(plans, options.concurrency, async (plan) => {
    const { request, expectation, shape, after } = buildLoadRequest(fleet, plan)
    const { status } = await fleet.checks.perform('load', request, expectation, shape)
    after?.(status)
    done++
    if (done % 1000 === 0 || done === plans.length) options.onProgress?.({ done, total: plans.length })
  })
  result.durationMs = Math.round(performance.now() - started)

  if (options.sweep !== false) await runConcurrently(schools, options.concurrency, async (school) => { await sweepSchool(fleet, school) })
  return result
}

/** Reads everything of a school back, so a write that went to the wrong database shows. */
async function sweepSchool ({ tokens, checks }: Fleet, school: SchoolState): Promise<void> {
  const headers = { authorization: `Bearer ${tokens.single(school.slug, tokens.subject())}` }
  const listed = await checks.perform('sweep', { method: 'GET', url: '/api/lunch-weeks', headers }, checks.listExpectation(school), 'single')
  if (!Array.isArray(listed.body)) return
  for (const week of listed.body as WeekBody[]) {
    if (!isWeek(week)) continue
    await checks.perform('sweep', { method: 'GET', url: `/api/lunch-weeks/${week.id}`, headers },
      checks.weekExpectation('get', school, [200, 404], { id: Number(week.id), codes: { 404: 'LUNCH_WEEK_NOT_FOUND' } }), 'single')
  }
}
