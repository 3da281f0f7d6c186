import { weekdaysOf } from '../../src/lunch/repository.js'
import { MONDAYS_PER_SCHOOL, mondayOf } from './calendar.js'
import { isWeek } from './checks.js'
import { liveWeeks, OPERATION_WEIGHTS, pick, pickWeighted, SHAPE_WEIGHTS, someWeekId, type Fleet, type Operation, type Plan } from './plan.js'
import type { Auth } from './tokens.js'
import type { DayBody, Expectation, IsolationRequest, KnownWeek, PlannedRequest, SchoolState, WeekBody } from './types.js'

/** What one builder gets: the school the request is for, its random numbers and its token. */
interface Draw {
  fleet: Fleet
  school: SchoolState
  r: Plan['r']
  auth: Auth
  /** For a refused token every route answers the refusal and no data. */
  expect: (expectation: Expectation) => Expectation
}

interface Built { request: IsolationRequest, expectation: Expectation, after?: (status: number) => void }

const json = (headers: Record<string, string>): Record<string, string> => ({ ...headers, 'content-type': 'application/json' })

/** One small builder per operation of the authenticated API. */
const OPERATIONS: Record<Exclude<Operation, 'public'>, (d: Draw) => Built> = {
  list: ({ fleet, school, auth: { headers }, expect }) => ({
    request: { method: 'GET', url: '/api/lunch-weeks', headers },
    expectation: expect({
      operation: 'list',
      statuses: [200],
      owner: school.slug,
      check: (body) => {
        if (!Array.isArray(body)) return ['not an array']
        const problems = body.flatMap((w) => fleet.checks.weekProblems(school, w, false))
        const weekOfs = new Set(body.map((w: WeekBody) => w.weekOf))
        for (const seeded of liveWeeks(school, (w) => w.seed)) {
          if (!weekOfs.has(seeded.weekOf)) problems.push(`seeded week ${seeded.weekOf} missing from ${school.slug}'s list`)
        }
        if (problems.length === 0) for (const w of body as WeekBody[]) fleet.checks.learn(school, w)
        return problems
      }
    })
  }),

  get: ({ fleet, school, r: [r1, r2], auth: { headers }, expect }) => {
    const { id, own } = someWeekId(fleet, school, r1, r2)
    // A seeded week is never deleted: it must be found.
    const statuses = own?.seed === true ? [200] : [200, 404]
    return {
      request: { method: 'GET', url: `/api/lunch-weeks/${id}`, headers },
      expectation: expect(fleet.checks.weekExpectation('get', school, statuses, { id, codes: { 404: 'LUNCH_WEEK_NOT_FOUND' } }))
    }
  },

  create: ({ fleet, school, r: [r1], auth: { headers }, expect }) => {
    const monday = mondayOf(school.index, Math.floor(r1 * MONDAYS_PER_SCHOOL))
    const seeded = liveWeeks(school, (w) => w.seed && w.weekOf === monday).length > 0
    return {
      request: { method: 'POST', url: '/api/lunch-weeks', headers: json(headers), payload: JSON.stringify({ weekOf: monday }) },
      expectation: expect({
        ...fleet.checks.weekExpectation('create', school, seeded ? [409] : [201, 409], { codes: { 409: 'LUNCH_WEEK_EXISTS' }, write: true }),
        check: (body) => {
          const problems = fleet.checks.weekProblems(school, body, true)
          if (isWeek(body) && body.weekOf !== monday) problems.push(`created ${monday}, got ${body.weekOf}`)
          if (isWeek(body) && body.days?.some((d) => d.menuDetails !== '') === true) problems.push('a new week with menus')
          if (problems.length === 0 && isWeek(body)) fleet.checks.learn(school, body)
          return problems
        }
      })
    }
  },

  menu: (draw) => {
    const { fleet, school, auth: { headers }, expect } = draw
    const menuDetails = fleet.nextMenu(school.slug)
    const { weekId, dayId, statuses, dayOf } = menuTarget(draw)
    return {
      request: { method: 'PATCH', url: `/api/lunch-weeks/${weekId}/days/${dayId}`, headers: json(headers), payload: JSON.stringify({ menuDetails }) },
      expectation: expect({
        operation: 'menu',
        statuses,
        codes: { 404: 'LUNCH_DAY_NOT_FOUND' },
        owner: school.slug,
        write: true,
        check: (body) => {
          const day = body as DayBody
          const problems: string[] = []
          if (day.id !== String(dayId)) problems.push(`patched day ${dayId}, got ${day.id}`)
          if (day.menuDetails !== menuDetails) problems.push(`menu "${day.menuDetails}" is not the one sent`)
          if (fleet.checks.ownerOf(day.day) !== school.slug) problems.push(`day ${day.day} is not ${school.slug}'s`)
          if (dayOf !== undefined && !weekdaysOf(dayOf.weekOf).includes(day.day)) problems.push(`day ${day.day} is not in week ${dayOf.weekOf}`)
          return problems
        }
      })
    }
  },

  // Own weeks but the pinned one, either way; other schools' ids only ever published.
  publish: ({ fleet, school, r: [r1, r2, , , r5, r6], auth: { headers }, expect }) => {
    const own = r1 < 0.8 ? pick(liveWeeks(school, (w) => !w.pinned), r2) : undefined
    const id = own?.id ?? someWeekId(fleet, fleet.bySlug.get(fleet.tokens.others(school, 1, r5)[0] as string) as SchoolState, 0, r2).id
    const isPublished = own === undefined ? true : r6 < 0.6
    const statuses = own?.seed === true ? [200] : [200, 404]
    return {
      request: { method: 'PATCH', url: `/api/lunch-weeks/${id}`, headers: json(headers), payload: JSON.stringify({ isPublished }) },
      expectation: expect({
        ...fleet.checks.weekExpectation('publish', school, statuses, { id, codes: { 404: 'LUNCH_WEEK_NOT_FOUND' }, write: true }),
        check: (body) => {
          const problems = fleet.checks.weekProblems(school, body, true)
          if (isWeek(body) && body.id !== String(id)) problems.push(`published week ${id}, got ${body.id}`)
          if (isWeek(body) && body.isPublished !== isPublished) problems.push(`isPublished ${String(body.isPublished)}, sent ${String(isPublished)}`)
          return problems
        }
      })
    }
  },

  // Only this school's own unseeded weeks: seeded weeks must survive the run.
  delete: ({ fleet, school, r: [r1], auth, expect }) => {
    const { headers } = auth
    const week = pick(liveWeeks(school, (w) => !w.seed), r1)
    if (week === undefined) {
      return { request: { method: 'GET', url: '/api/lunch-weeks', headers }, expectation: expect(fleet.checks.listExpectation(school)) }
    }
    return {
      request: { method: 'DELETE', url: `/api/lunch-weeks/${week.id}`, headers },
      expectation: expect({ operation: 'delete', statuses: [204, 404], codes: { 404: 'LUNCH_WEEK_NOT_FOUND' }, owner: school.slug, write: true }),
      after: (status) => { if (auth.refusal === null && (status === 204 || status === 404)) week.deleted = true }
    }
  },

  me: ({ fleet, school, auth, expect }) => ({
    request: { method: 'GET', url: '/api/me', headers: auth.headers },
    expectation: expect({ operation: 'me', statuses: [200], owner: school.slug, check: (body) => meProblems(fleet, school, auth, body) })
  })
}

/** The day a menu request patches: mostly a day of one of the school's weeks, sometimes one that does not belong. */
function menuTarget ({ fleet, school, r: [r1, r2, , , r5, r6] }: Draw): { weekId: number, dayId: number, statuses: number[], dayOf?: KnownWeek } {
  const withDays = liveWeeks(school, (w) => w.days.length > 0)
  const week = pick(withDays, r1)
  if (week !== undefined && r2 < 0.75) return { weekId: week.id, dayId: pick(week.days, r5) as number, statuses: [200, 404], dayOf: week }
  if (week !== undefined && r2 < 0.88 && withDays.length > 1) {
    // A day of another week of the same school: never that week's day.
    const otherWeek = withDays.find((w) => w !== week && !w.days.includes(week.days[0] as number))
    return { weekId: week.id, dayId: pick(otherWeek?.days ?? week.days, r5) as number, statuses: otherWeek !== undefined ? [404] : [200, 404] }
  }
  // Ids of another school: they may exist here too, and then they are this school's.
  const other = pick(fleet.schools, r5) as SchoolState
  const foreign = pick(liveWeeks(other, (w) => w.days.length > 0), r6)
  return { weekId: foreign?.id ?? 1, dayId: pick(foreign?.days ?? [1], r6) as number, statuses: [200, 404] }
}

function meProblems (fleet: Fleet, school: SchoolState, auth: Auth, body: unknown): string[] {
  const me = body as { subject?: unknown, school?: { slug?: unknown, name?: unknown }, schools?: unknown }
  const problems: string[] = []
  if (me.subject !== auth.subject) problems.push(`subject ${String(me.subject)}, token has ${String(auth.subject)}`)
  if (me.school?.slug !== school.slug) problems.push(`school ${String(me.school?.slug)}, token names ${school.slug}`)
  const names = fleet.schoolNames
  if (names !== undefined && me.school?.name !== names[school.slug]) problems.push(`name ${String(me.school?.name)}, wanted ${String(names[school.slug])}`)
  const listed = Array.isArray(me.schools) ? [...me.schools as string[]].sort() : null
  if (listed === null || listed.join(',') !== [...auth.allowed].sort().join(',')) {
    problems.push(`schools ${JSON.stringify(me.schools)}, token allows ${JSON.stringify(auth.allowed)}`)
  }
  return problems
}

/** The public page of `school`, sometimes carrying a token of another school that must change nothing. */
function publicRequest (fleet: Fleet, school: SchoolState, [r1, r2, r3, r4, r5]: Plan['r']): PlannedRequest {
  const headers: Record<string, string> = {}
  let shape = 'none'
  if (r3 < 0.4) {
    const other = fleet.tokens.others(school, 1, r4)[0] as string
    headers.authorization = `Bearer ${fleet.tokens.single(other, fleet.tokens.subject())}`
    headers['x-school'] = other
    shape = 'otherSchoolToken'
  }
  const page = (slug: string, monday: string): IsolationRequest => ({ method: 'GET', url: `/api/public/schools/${slug}/lunch-weeks/${monday}`, headers })
  if (r1 < 0.08) {
    const request = page(`iso-nowhere-${Math.floor(r2 * 100)}`, mondayOf(school.index, 0))
    return { shape, request, expectation: { operation: 'public', statuses: [404], codes: { 404: 'SCHOOL_NOT_FOUND' }, owner: null } }
  }
  if (r1 < 0.25) {
    // Another school's Monday under this school's path: this school never has it.
    const other = fleet.bySlug.get(fleet.tokens.others(school, 1, r2)[0] as string) as SchoolState
    const request = page(school.slug, mondayOf(other.index, Math.floor(r5 * MONDAYS_PER_SCHOOL)))
    return { shape, request, expectation: { operation: 'public', statuses: [404], codes: { 404: 'PUBLISHED_WEEK_NOT_FOUND' }, owner: school.slug } }
  }
  const pinned = liveWeeks(school, (w) => w.pinned)[0]
  const strict = r1 < 0.65 && pinned !== undefined
  const monday = strict ? pinned.weekOf : mondayOf(school.index, Math.floor(r5 * MONDAYS_PER_SCHOOL))
  return {
    shape,
    request: page(school.slug, monday),
    expectation: {
      operation: 'public',
      statuses: strict ? [200] : [200, 404],
      codes: { 404: 'PUBLISHED_WEEK_NOT_FOUND' },
      owner: school.slug,
      check: (body) => {
        const problems = fleet.checks.weekProblems(school, body, true)
        if (isWeek(body) && body.weekOf !== monday) problems.push(`asked for ${monday}, got ${body.weekOf}`)
        if (isWeek(body) && !body.isPublished) problems.push('an unpublished week on the public page')
        return problems
      }
    }
  }
}

/** The request of one plan: an operation, a school and a token shape, with what it must answer. */
export function buildLoadRequest (fleet: Fleet, plan: Plan): PlannedRequest {
  const operation = pickWeighted(OPERATION_WEIGHTS, plan.op)
  const school = pick(fleet.schools, plan.school) as SchoolState
  if (operation === 'public') return publicRequest(fleet, school, plan.r)
  const shape = pickWeighted(SHAPE_WEIGHTS, plan.shape)
  const auth = fleet.tokens.authFor(shape, school, plan.r[2], plan.r[3])
  const { refusal } = auth
  const expect = (exp: Expectation): Expectation => refusal === null
    ? exp
    : { operation: exp.operation, statuses: [refusal.status], codes: { [refusal.status]: refusal.code }, owner: null }
  return { shape, ...OPERATIONS[operation]({ fleet, school, r: plan.r, auth, expect }) }
}
