/*
 * Isolation under concurrency: many schools, thousands of interleaved
 * requests with random tokens, every response checked against the school its
 * token names (or, for the public page, the school in the path).
 *
 *   npx tsx scripts/isolation.ts [--schools 200] [--requests 50000] [--concurrency 64] [--seed 1]
 *
 * As a module, runIsolationCheck() drives any `send` function: the test suite
 * passes one built on app.inject, the command line one built on fetch
 * against a listening server.
 *
 * How a leak is recognised: school number i owns its own range of Mondays
 * (weekOf values never shared between schools), and every menu it writes
 * reads `menu of <slug> #<n>`. So any weekOf, day, menu text or slug in a
 * body tells whose data it is. Week ids are per database and overlap across
 * schools on purpose; ids of other schools are sent too.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { seededRandom } from './bench/random.js'

// ---------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------

export interface IsolationRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  /** Path and query, e.g. `/api/lunch-weeks/3`. */
  url: string
  headers: Record<string, string>
  /** A JSON text; `content-type: application/json` is set in headers when present. */
  payload?: string
}

export interface IsolationResponse {
  statusCode: number
  /** The raw body text. */
  body: string
}

export type Send = (request: IsolationRequest) => Promise<IsolationResponse>

export interface IsolationOptions {
  send: Send
  /** Slugs of active, migrated schools. Their order fixes which Mondays each owns: keep it stable across runs. */
  schools: string[]
  /** Requests of the interleaved load phase. */
  requests: number
  /** Requests in flight at once. */
  concurrency: number
  /** PRNG seed: the same seed gives the same plan of requests. */
  seed?: number
  /**
   * Signs claims into a JWT the server accepts. When the claims carry
   * `iat`/`exp` in the past the token must come out expired (a signer with a
   * fixed expiresIn below 10 days does: exp = iat + expiresIn).
   */
  token: (claims: Record<string, unknown>) => string
  /** Claim names (JWT_SCHOOL_CLAIM, JWT_SCHOOLS_CLAIM). */
  schoolClaim?: string
  schoolsClaim?: string
  /** When given, /api/me must answer these names. */
  schoolNames?: Record<string, string>
  /** Weeks seeded per school before the load (1 to 6, default 3). */
  seedWeeks?: number
  /** After the load, read every school's weeks back once (default true). */
  sweep?: boolean
  onProgress?: (done: number, total: number) => void
}

export type Phase = 'seed' | 'load' | 'sweep'

export interface Leak {
  phase: Phase
  operation: string
  tokenShape: string
  method: string
  url: string
  statusCode: number
  /** The school the response may speak of; null when it may speak of none (a refused request). */
  expectedSchool: string | null
  /** Whose data was found; null when it is no school's known data. */
  foundSchool: string | null
  /** Where in the body, e.g. `$[2].days[0].menuDetails`. */
  field: string
  value: string
}

export interface Unexpected {
  phase: Phase
  operation: string
  tokenShape: string
  method: string
  url: string
  statusCode: number
  /** The statuses (and code) this request could answer. */
  expected: string
  reason: string
  body: string
}

export interface IsolationResult {
  /** Requests of the load phase. */
  requests: number
  /** Load-phase responses by HTTP status. */
  byStatus: Record<number, number>
  leaks: Leak[]
  unexpected: Unexpected[]
  /** Duration of the load phase. */
  durationMs: number
  byOperation: Record<string, number>
  byTokenShape: Record<string, number>
  /** Successful writes (create, menu, publish, delete) per school in the load phase. */
  writesBySchool: Record<string, number>
  seedRequests: number
  sweepRequests: number
}

const WEEK_MS = 7 * 86_400_000
const DAY_MS = 86_400_000
/** Mondays each school owns; seeds take the first ones, creates pick among all. */
export const MONDAYS_PER_SCHOOL = 12
/** 2030-01-07, a Monday: school i owns the MONDAYS_PER_SCHOOL Mondays from BASE + i × 12 weeks. */
const BASE_MONDAY_MS = Date.UTC(2030, 0, 7)
const MARKER = /menu of ([a-z0-9_-]+) #(\d+)/
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/

const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

/** The k-th Monday (0-based) owned by school number `index`. */
export function mondayOf (index: number, k: number): string {
  return isoDate(BASE_MONDAY_MS + (index * MONDAYS_PER_SCHOOL + k) * WEEK_MS)
}

function weekdays (monday: string): string[] {
  const start = Date.parse(`${monday}T00:00:00Z`)
  return [0, 1, 2, 3, 4].map((d) => isoDate(start + d * DAY_MS))
}

interface KnownWeek {
  id: number
  weekOf: string
  days: number[]
  seed: boolean
  /** The seeded week that stays published: the public page of its Monday must answer 200. */
  pinned: boolean
  deleted: boolean
}

interface SchoolState {
  slug: string
  index: number
  weeks: Map<number, KnownWeek>
}

type TokenShape =
  | 'single' | 'multi' | 'cross' | 'expired' | 'badSignature' | 'forgedPayload' | 'algNone' | 'unknownSchool' | 'missing'
  | 'none' | 'otherSchoolToken'

interface Auth {
  shape: TokenShape
  headers: Record<string, string>
  /** The school the request acts for, when the token is good. */
  acting: string | null
  /** Slugs the token allows (for /api/me). */
  allowed: string[]
  subject: string | null
  /** When refused: the status and code the refusal must carry. */
  refusal: { status: number, code: string } | null
}

/** What a request expects back, and how to check a successful body. */
interface Expectation {
  operation: string
  statuses: number[]
  /** Required error code for a given status. */
  codes?: Record<number, string>
  /** The school whose data the body may carry (null: none). */
  owner: string | null
  /** Extra checks of a 2xx body; returns problems. Called only when the status is 2xx and the body parsed. */
  check?: (body: unknown, statusCode: number) => string[]
  /** Counts as a write of `owner` when it succeeds. */
  write?: boolean
}

/** Per load request: every random number it will need, drawn up front so a seed fixes the plan. */
interface Plan { op: number, shape: number, school: number, r: [number, number, number, number, number, number] }

const OPERATIONS: Array<[string, number]> = [
  ['list', 14], ['get', 17], ['create', 11], ['menu', 16], ['publish', 9], ['delete', 4], ['me', 9], ['public', 20]
]
const SHAPES: Array<[TokenShape, number]> = [
  ['single', 42], ['multi', 25], ['cross', 11], ['expired', 5], ['badSignature', 5], ['forgedPayload', 4],
  ['algNone', 2], ['unknownSchool', 3], ['missing', 3]
]

function pickWeighted<T> (table: Array<[T, number]>, roll: number): T {
  const total = table.reduce((sum, [, w]) => sum + w, 0)
  let x = roll * total
  for (const [value, weight] of table) {
    if (x < weight) return value
    x -= weight
  }
  return (table.at(-1) as [T, number])[0]
}

function pick<T> (items: readonly T[], roll: number): T | undefined {
  return items.length === 0 ? undefined : items[Math.min(items.length - 1, Math.floor(roll * items.length))]
}

const b64url = (value: string): string => Buffer.from(value).toString('base64url')

function increment (counts: Record<string | number, number>, key: string | number): void {
  counts[key] = (counts[key] ?? 0) + 1
}

function snippet (body: string): string {
  return body.length > 300 ? `${body.slice(0, 300)}…` : body
}

export async function runIsolationCheck (options: IsolationOptions): Promise<IsolationResult> {
  const { send, token } = options
  const schoolClaim = options.schoolClaim ?? 'school'
  const schoolsClaim = options.schoolsClaim ?? 'schools'
  const seedWeeks = options.seedWeeks ?? 3
  if (options.schools.length < 2) throw new Error('runIsolationCheck needs at least 2 schools')
  if (new Set(options.schools).size !== options.schools.length) throw new Error('school slugs must be distinct')
  if (!Number.isInteger(seedWeeks) || seedWeeks < 1 || seedWeeks > 6) throw new Error('seedWeeks must be 1 to 6')
  if (!Number.isInteger(options.requests) || options.requests < 0) throw new Error('requests must be a whole number')
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new Error('concurrency must be at least 1')

  const random = seededRandom(options.seed ?? 1)
  const schools: SchoolState[] = options.schools.map((slug, index) => ({ slug, index, weeks: new Map() }))
  const bySlug = new Map(schools.map((s) => [s.slug, s]))
  const slugSet = new Set(options.schools)
  const result: IsolationResult = {
    requests: options.requests,
    byStatus: {},
    leaks: [],
    unexpected: [],
    durationMs: 0,
    byOperation: {},
    byTokenShape: {},
    writesBySchool: {},
    seedRequests: 0,
    sweepRequests: 0
  }
  let menuCounter = 0
  let subjectCounter = 0
  const nowSeconds = (): number => Math.floor(Date.now() / 1000)

  /** The school a plain date belongs to, or null when it is no school's. */
  function ownerOfDate (date: string): string | null {
    const ms = Date.parse(`${date}T00:00:00Z`)
    if (Number.isNaN(ms)) return null
    const offset = ms - BASE_MONDAY_MS
    if (offset < 0) return null
    const dayInWeek = Math.floor(offset / DAY_MS) % 7
    if (dayInWeek > 4) return null
    const index = Math.floor(Math.floor(offset / WEEK_MS) / MONDAYS_PER_SCHOOL)
    return options.schools[index] ?? null
  }

  // ---- tokens ------------------------------------------------------------

  function subject (): string {
    subjectCounter++
    return `iso-user-${subjectCounter}`
  }

  function others (school: SchoolState, count: number, roll: number): string[] {
    // Consecutive schools from a random start, skipping `school` itself.
    const picked: string[] = []
    const start = Math.floor(roll * schools.length)
    for (let j = 0; j < schools.length && picked.length < count; j++) {
      const candidate = schools[(start + j) % schools.length] as SchoolState
      if (candidate !== school) picked.push(candidate.slug)
    }
    return picked
  }

  function singleToken (slug: string, sub: string): string {
    return token({ sub, [schoolClaim]: slug })
  }

  function authFor (shape: TokenShape, school: SchoolState, r1: number, r2: number): Auth {
    const sub = subject()
    const good = (headers: Record<string, string>, allowed: string[], shapeName: TokenShape = shape): Auth =>
      ({ shape: shapeName, headers, acting: school.slug, allowed, subject: sub, refusal: null })
    const refused = (headers: Record<string, string>, status: number, code: string): Auth =>
      ({ shape, headers, acting: null, allowed: [], subject: null, refusal: { status, code } })
    switch (shape) {
      case 'single':
        return good({ authorization: `Bearer ${singleToken(school.slug, sub)}` }, [school.slug])
      case 'multi': {
        const list = [...others(school, 1 + Math.floor(r1 * 3), r2)]
        list.splice(Math.floor(r1 * (list.length + 1)), 0, school.slug)
        const claims: Record<string, unknown> = { sub, [schoolsClaim]: list }
        // Sometimes the single claim names another school of the list too: X-School still decides.
        if (r2 < 0.3 && list.length > 1) claims[schoolClaim] = list.find((s) => s !== school.slug)
        const allowed = [...new Set([...(typeof claims[schoolClaim] === 'string' ? [claims[schoolClaim] as string] : []), ...list])]
        return good({ authorization: `Bearer ${token(claims)}`, 'x-school': school.slug }, allowed)
      }
      case 'cross': {
        // A token for `school` (alone or with a few others) asking for a school it does not allow.
        const allowed = r1 < 0.5 || schools.length < 3 ? [school.slug] : [school.slug, ...others(school, Math.min(2, schools.length - 2), r2)]
        const target = schools.find((s, i) => i >= Math.floor(r2 * schools.length) && !allowed.includes(s.slug)) ??
          schools.find((s) => !allowed.includes(s.slug)) as SchoolState
        const claims = allowed.length === 1 ? { sub, [schoolClaim]: school.slug } : { sub, [schoolsClaim]: allowed }
        return refused({ authorization: `Bearer ${token(claims)}`, 'x-school': target.slug }, 403, 'SCHOOL_NOT_ALLOWED')
      }
      case 'expired': {
        const now = nowSeconds()
        const jwt = token({ sub, [schoolClaim]: school.slug, iat: now - 10 * 86_400, exp: now - 9 * 86_400 })
        return refused({ authorization: `Bearer ${jwt}` }, 401, 'TOKEN_EXPIRED')
      }
      case 'badSignature': {
        const [header, payload, signature = ''] = singleToken(school.slug, sub).split('.')
        // Change a character in the middle: the last one may only carry padding bits.
        const at = Math.floor(signature.length / 2)
        const flipped = signature[at] === 'A' ? 'B' : 'A'
        return refused({ authorization: `Bearer ${header}.${payload}.${signature.slice(0, at)}${flipped}${signature.slice(at + 1)}` }, 401, 'TOKEN_INVALID')
      }
      case 'forgedPayload': {
        // The payload of a token for another school under this school's signature.
        const victim = others(school, 1, r1)[0] as string
        const [header, , signature] = singleToken(school.slug, sub).split('.')
        const payload = singleToken(victim, sub).split('.')[1]
        return refused({ authorization: `Bearer ${header}.${payload}.${signature}`, ...(r2 < 0.5 ? { 'x-school': victim } : {}) }, 401, 'TOKEN_INVALID')
      }
      case 'algNone': {
        const jwt = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub, [schoolClaim]: school.slug, iat: nowSeconds() }))}.`
        return refused({ authorization: `Bearer ${jwt}` }, 401, 'TOKEN_INVALID')
      }
      case 'unknownSchool': {
        const slug = `iso-unknown-${Math.floor(r1 * 1000)}`
        return refused({ authorization: `Bearer ${singleToken(slug, sub)}` }, 403, 'SCHOOL_UNKNOWN')
      }
      case 'missing':
        return refused({}, 401, 'TOKEN_MISSING')
      default:
        throw new Error(`no token shape ${shape}`)
    }
  }

  // ---- checking ----------------------------------------------------------

  function record (phase: Phase, request: IsolationRequest, expectation: Expectation, shape: string, response: IsolationResponse): boolean {
    const base = { phase, operation: expectation.operation, tokenShape: shape, method: request.method, url: request.url, statusCode: response.statusCode }
    let ok = true
    const unexpected = (reason: string): void => {
      ok = false
      const codes = expectation.codes === undefined ? '' : ` (${Object.entries(expectation.codes).map(([s, c]) => `${s} ${c}`).join(', ')})`
      result.unexpected.push({ ...base, expected: `${expectation.statuses.join('|')}${codes}`, reason, body: snippet(response.body) })
    }
    const leak = (field: string, value: string, foundSchool: string | null): void => {
      ok = false
      result.leaks.push({ ...base, expectedSchool: expectation.owner, foundSchool, field, value })
    }

    let body: unknown = null
    if (response.body !== '') {
      try {
        body = JSON.parse(response.body)
      } catch {
        unexpected('the body is not JSON')
      }
    }

    // Whatever the status: no data of another school, anywhere in the body.
    scan(body, '$', (field, value) => {
      const marker = MARKER.exec(value)
      if (marker !== null) {
        const found = marker[1] as string
        if (found !== expectation.owner) leak(field, value, slugSet.has(found) ? found : null)
        return
      }
      if (DATE_ONLY.test(value)) {
        const found = ownerOfDate(value)
        if (found !== expectation.owner) leak(field, value, found)
        return
      }
      if (slugSet.has(value) && value !== expectation.owner && !field.startsWith('$.schools[')) leak(field, value, value)
    })

    if (response.statusCode >= 500) {
      unexpected('server error')
    } else if (!expectation.statuses.includes(response.statusCode)) {
      unexpected('status not expected for this request')
    } else if (response.statusCode >= 400) {
      const code = (body as { code?: unknown } | null)?.code
      const wanted = expectation.codes?.[response.statusCode]
      if (typeof code !== 'string') unexpected('error body without a code')
      else if (wanted !== undefined && code !== wanted) unexpected(`error code ${code}, wanted ${wanted}`)
    } else if (response.statusCode === 204) {
      if (response.body !== '') unexpected('204 with a body')
    } else if (body === null) {
      if (ok) unexpected('no body')
    } else if (expectation.check !== undefined) {
      for (const problem of expectation.check(body, response.statusCode)) unexpected(problem)
    }
    if (ok && expectation.write === true && response.statusCode < 300 && expectation.owner !== null) increment(result.writesBySchool, expectation.owner)
    return ok
  }

  async function perform (phase: Phase, request: IsolationRequest, expectation: Expectation, shape: string): Promise<{ status: number, body: unknown, ok: boolean }> {
    let response: IsolationResponse
    try {
      response = await send(request)
    } catch (error) {
      response = { statusCode: 0, body: '' }
      result.unexpected.push({
        phase, operation: expectation.operation, tokenShape: shape, method: request.method, url: request.url, statusCode: 0,
        expected: expectation.statuses.join('|'), reason: `transport error: ${(error as Error).message}`, body: ''
      })
      return { status: 0, body: null, ok: false }
    }
    if (phase === 'load') {
      increment(result.byStatus, response.statusCode)
      increment(result.byOperation, expectation.operation)
      increment(result.byTokenShape, shape)
    } else if (phase === 'seed') {
      result.seedRequests++
    } else {
      result.sweepRequests++
    }
    const ok = record(phase, request, expectation, shape, response)
    let body: unknown = null
    try { body = response.body === '' ? null : JSON.parse(response.body) } catch {}
    return { status: response.statusCode, body, ok }
  }

  // ---- body checks -------------------------------------------------------

  interface DayBody { id: number, day: string, menuDetails: string }
  interface WeekBody { id: number, weekOf: string, isPublished: boolean, days?: DayBody[] }

  function isWeek (value: unknown): value is WeekBody {
    const w = value as WeekBody | null
    return w !== null && typeof w === 'object' && Number.isSafeInteger(w.id) && typeof w.weekOf === 'string' && typeof w.isPublished === 'boolean'
  }

  /** A week of `school`: its own Monday, its five weekdays, its own menus, and the weekOf its id was created with. */
  function weekProblems (school: SchoolState, value: unknown, withDays: boolean): string[] {
    if (!isWeek(value)) return ['not a lunch week']
    const problems: string[] = []
    if (ownerOfDate(value.weekOf) !== school.slug) problems.push(`weekOf ${value.weekOf} is not one of ${school.slug}'s Mondays`)
    const known = school.weeks.get(value.id)
    if (known !== undefined && known.weekOf !== value.weekOf) problems.push(`week ${value.id} of ${school.slug} was ${known.weekOf}, now ${value.weekOf}`)
    if (withDays) {
      if (!Array.isArray(value.days)) return [...problems, 'no days']
      const dates = value.days.map((d) => d.day)
      if (dates.length === 0) problems.push(`week ${value.id} (${value.weekOf}) came back without its days`)
      else if (dates.join(',') !== weekdays(value.weekOf).join(',')) problems.push(`days ${dates.join(',')} are not the weekdays of ${value.weekOf}`)
      for (const day of value.days) {
        if (day.menuDetails !== '' && MARKER.exec(day.menuDetails)?.[1] !== school.slug) problems.push(`menu "${day.menuDetails}" is not ${school.slug}'s`)
      }
    }
    return problems
  }

  /** Remembers what a validated week body says (new ids, day ids). */
  function learn (school: SchoolState, week: WeekBody): void {
    const known = school.weeks.get(week.id)
    const days = Array.isArray(week.days) ? week.days.map((d) => d.id) : []
    if (known === undefined) {
      school.weeks.set(week.id, { id: week.id, weekOf: week.weekOf, days, seed: false, pinned: false, deleted: false })
    } else if (days.length > 0) {
      known.days = days
    }
  }

  function weekExpectation (operation: string, school: SchoolState, statuses: number[], extra: Partial<Expectation> & { id?: number, withDays?: boolean } = {}): Expectation {
    const { id, withDays = true, ...rest } = extra
    return {
      operation,
      statuses,
      owner: school.slug,
      check: (body) => {
        const problems = weekProblems(school, body, withDays)
        if (id !== undefined && isWeek(body) && body.id !== id) problems.push(`asked for week ${id}, got ${body.id}`)
        if (problems.length === 0 && isWeek(body)) learn(school, body)
        return problems
      },
      ...rest
    }
  }

  const jsonHeaders = (headers: Record<string, string>): Record<string, string> => ({ ...headers, 'content-type': 'application/json' })

  // ---- seeding -------------------------------------------------------------

  async function seedSchool (school: SchoolState): Promise<void> {
    const headers = { authorization: `Bearer ${singleToken(school.slug, subject())}` }
    const fail = (what: string): never => { throw new Error(`seeding ${school.slug}: ${what}`) }
    const mondays = Array.from({ length: seedWeeks }, (_, k) => mondayOf(school.index, k))

    const listed = await perform('seed', { method: 'GET', url: '/api/lunch-weeks', headers }, {
      operation: 'list',
      statuses: [200],
      owner: school.slug,
      check: (body) => Array.isArray(body) ? body.flatMap((w) => weekProblems(school, w, false)) : ['not an array']
    }, 'single')
    if (!listed.ok) fail(`listing failed (${listed.status})`)
    for (const week of listed.body as WeekBody[]) learn(school, week)

    for (const [k, monday] of mondays.entries()) {
      let week = [...school.weeks.values()].find((w) => w.weekOf === monday && !w.deleted)
      let res
      if (week === undefined) {
        res = await perform('seed', { method: 'POST', url: '/api/lunch-weeks', headers: jsonHeaders(headers), payload: JSON.stringify({ weekOf: monday }) },
          weekExpectation('create', school, [201]), 'single')
      } else {
        res = await perform('seed', { method: 'GET', url: `/api/lunch-weeks/${week.id}`, headers }, weekExpectation('get', school, [200], { id: week.id }), 'single')
      }
      if (!res.ok) fail(`week ${monday} (${res.status})`)
      week = school.weeks.get((res.body as WeekBody).id) as KnownWeek
      week.seed = true
      week.pinned = k === 0
      for (const dayId of week.days) {
        menuCounter++
        const menuDetails = `menu of ${school.slug} #${menuCounter}`
        const patched = await perform('seed', {
          method: 'PATCH', url: `/api/lunch-weeks/${week.id}/days/${dayId}`, headers: jsonHeaders(headers), payload: JSON.stringify({ menuDetails })
        }, { operation: 'menu', statuses: [200], owner: school.slug, check: (body) => (body as DayBody).menuDetails === menuDetails ? [] : ['menu not saved'] }, 'single')
        if (!patched.ok) fail(`menu of day ${dayId} (${patched.status})`)
      }
      // The first seeded week is published for good, the last stays a draft (when there are 2+), the rest published.
      const isPublished = k === 0 || k < seedWeeks - 1
      const published = await perform('seed', {
        method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, headers: jsonHeaders(headers), payload: JSON.stringify({ isPublished })
      }, weekExpectation('publish', school, [200], { id: week.id }), 'single')
      if (!published.ok) fail(`publishing ${monday} (${published.status})`)
    }
  }

  async function runPool<T> (items: T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const index = next++
        await work(items[index] as T, index)
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  }

  await runPool(schools, options.concurrency, seedSchool)

  // ---- the load ------------------------------------------------------------

  const plans: Plan[] = Array.from({ length: options.requests }, () => ({
    op: random(),
    shape: random(),
    school: random(),
    r: [random(), random(), random(), random(), random(), random()]
  }))

  const liveWeeks = (school: SchoolState, filter: (w: KnownWeek) => boolean = () => true): KnownWeek[] =>
    [...school.weeks.values()].filter((w) => !w.deleted && filter(w))
  let maxKnownId = 1
  for (const school of schools) for (const id of school.weeks.keys()) maxKnownId = Math.max(maxKnownId, id)

  /** A week id to send to `school`: one of its own, another school's (ids overlap), or any small id. */
  function someWeekId (school: SchoolState, r1: number, r2: number): { id: number, own: KnownWeek | undefined } {
    if (r1 < 0.5) {
      const own = pick(liveWeeks(school), r2)
      if (own !== undefined) return { id: own.id, own }
    }
    if (r1 < 0.8) {
      const other = pick(schools, r2) as SchoolState
      const week = pick([...other.weeks.values()], (r2 * 7919) % 1)
      if (week !== undefined) return { id: week.id, own: school.weeks.get(week.id) }
    }
    const id = 1 + Math.floor(r2 * (maxKnownId + 3))
    return { id, own: school.weeks.get(id) }
  }

  function buildLoadRequest (plan: Plan): { request: IsolationRequest, expectation: Expectation, shape: string, after?: (status: number) => void } {
    const operation = pickWeighted(OPERATIONS, plan.op)
    const school = pick(schools, plan.school) as SchoolState
    const [r1, r2, r3, r4, r5, r6] = plan.r

    if (operation === 'public') {
      // The public page of `school`, sometimes carrying a token of another school that must change nothing.
      const headers: Record<string, string> = {}
      let shape = 'none'
      if (r3 < 0.4) {
        const other = others(school, 1, r4)[0] as string
        headers.authorization = `Bearer ${singleToken(other, subject())}`
        headers['x-school'] = other
        shape = 'otherSchoolToken'
      }
      const pinned = liveWeeks(school, (w) => w.pinned)[0]
      if (r1 < 0.08) {
        const slug = `iso-nowhere-${Math.floor(r2 * 100)}`
        return {
          shape,
          request: { method: 'GET', url: `/api/public/schools/${slug}/lunch-weeks/${mondayOf(school.index, 0)}`, headers },
          expectation: { operation: 'public', statuses: [404], codes: { 404: 'SCHOOL_NOT_FOUND' }, owner: null }
        }
      }
      if (r1 < 0.25) {
        // Another school's Monday under this school's path: this school never has it.
        const other = bySlug.get(others(school, 1, r2)[0] as string) as SchoolState
        const monday = mondayOf(other.index, Math.floor(r5 * MONDAYS_PER_SCHOOL))
        return {
          shape,
          request: { method: 'GET', url: `/api/public/schools/${school.slug}/lunch-weeks/${monday}`, headers },
          expectation: { operation: 'public', statuses: [404], codes: { 404: 'PUBLISHED_WEEK_NOT_FOUND' }, owner: school.slug }
        }
      }
      const strict = r1 < 0.65 && pinned !== undefined
      const monday = strict ? (pinned as KnownWeek).weekOf : mondayOf(school.index, Math.floor(r5 * MONDAYS_PER_SCHOOL))
      return {
        shape,
        request: { method: 'GET', url: `/api/public/schools/${school.slug}/lunch-weeks/${monday}`, headers },
        expectation: {
          operation: 'public',
          statuses: strict ? [200] : [200, 404],
          codes: { 404: 'PUBLISHED_WEEK_NOT_FOUND' },
          owner: school.slug,
          check: (body) => {
            const problems = weekProblems(school, body, true)
            if (isWeek(body) && body.weekOf !== monday) problems.push(`asked for ${monday}, got ${body.weekOf}`)
            if (isWeek(body) && !body.isPublished) problems.push('an unpublished week on the public page')
            return problems
          }
        }
      }
    }

    const shape = pickWeighted(SHAPES, plan.shape)
    const auth = authFor(shape, school, r3, r4)
    const headers = auth.headers
    const refusal = auth.refusal
    /** For a refused token every route answers the refusal and no data. */
    const expect = (exp: Expectation): Expectation => refusal === null
      ? exp
      : { operation: exp.operation, statuses: [refusal.status], codes: { [refusal.status]: refusal.code }, owner: null }

    switch (operation) {
      case 'list':
        return {
          shape,
          request: { method: 'GET', url: '/api/lunch-weeks', headers },
          expectation: expect({
            operation,
            statuses: [200],
            owner: school.slug,
            check: (body) => {
              if (!Array.isArray(body)) return ['not an array']
              const problems = body.flatMap((w) => weekProblems(school, w, false))
              const weekOfs = new Set(body.map((w: WeekBody) => w.weekOf))
              for (const seeded of liveWeeks(school, (w) => w.seed)) {
                if (!weekOfs.has(seeded.weekOf)) problems.push(`seeded week ${seeded.weekOf} missing from ${school.slug}'s list`)
              }
              if (problems.length === 0) for (const w of body as WeekBody[]) learn(school, w)
              return problems
            }
          })
        }
      case 'get': {
        const { id, own } = someWeekId(school, r1, r2)
        // A seeded week is never deleted: it must be found.
        const mustExist = own?.seed === true
        return {
          shape,
          request: { method: 'GET', url: `/api/lunch-weeks/${id}`, headers },
          expectation: expect(weekExpectation(operation, school, mustExist ? [200] : [200, 404], { id, codes: { 404: 'LUNCH_WEEK_NOT_FOUND' } }))
        }
      }
      case 'create': {
        const monday = mondayOf(school.index, Math.floor(r1 * MONDAYS_PER_SCHOOL))
        const seeded = liveWeeks(school, (w) => w.seed && w.weekOf === monday).length > 0
        return {
          shape,
          request: { method: 'POST', url: '/api/lunch-weeks', headers: jsonHeaders(headers), payload: JSON.stringify({ weekOf: monday }) },
          expectation: expect({
            ...weekExpectation(operation, school, seeded ? [409] : [201, 409], { codes: { 409: 'LUNCH_WEEK_EXISTS' }, write: true }),
            check: (body) => {
              const problems = weekProblems(school, body, true)
              if (isWeek(body) && body.weekOf !== monday) problems.push(`created ${monday}, got ${body.weekOf}`)
              if (isWeek(body) && body.days?.some((d) => d.menuDetails !== '') === true) problems.push('a new week with menus')
              if (problems.length === 0 && isWeek(body)) learn(school, body)
              return problems
            }
          })
        }
      }
      case 'menu': {
        menuCounter++
        const menuDetails = `menu of ${school.slug} #${menuCounter}`
        const withDays = liveWeeks(school, (w) => w.days.length > 0)
        let weekId: number
        let dayId: number
        let statuses = [200, 404]
        let dayOf: KnownWeek | undefined
        const week = pick(withDays, r1)
        if (week !== undefined && r2 < 0.75) {
          weekId = week.id
          dayId = pick(week.days, r5) as number
          dayOf = week
        } else if (week !== undefined && r2 < 0.88 && withDays.length > 1) {
          // A day of another week of the same school: never that week's day.
          const otherWeek = withDays.find((w) => w !== week && !w.days.includes(week.days[0] as number)) as KnownWeek | undefined
          weekId = week.id
          dayId = pick(otherWeek?.days ?? week.days, r5) as number
          if (otherWeek !== undefined) statuses = [404]
        } else {
          // Ids of another school: they may exist here too, and then they are this school's.
          const other = pick(schools, r5) as SchoolState
          const foreign = pick(liveWeeks(other, (w) => w.days.length > 0), r6)
          weekId = foreign?.id ?? 1
          dayId = pick(foreign?.days ?? [1], r6) as number
        }
        return {
          shape,
          request: { method: 'PATCH', url: `/api/lunch-weeks/${weekId}/days/${dayId}`, headers: jsonHeaders(headers), payload: JSON.stringify({ menuDetails }) },
          expectation: expect({
            operation,
            statuses,
            codes: { 404: 'LUNCH_DAY_NOT_FOUND' },
            owner: school.slug,
            write: true,
            check: (body) => {
              const day = body as DayBody
              const problems: string[] = []
              if (day.id !== dayId) problems.push(`patched day ${dayId}, got ${day.id}`)
              if (day.menuDetails !== menuDetails) problems.push(`menu "${day.menuDetails}" is not the one sent`)
              if (ownerOfDate(day.day) !== school.slug) problems.push(`day ${day.day} is not ${school.slug}'s`)
              if (dayOf !== undefined && !weekdays(dayOf.weekOf).includes(day.day)) problems.push(`day ${day.day} is not in week ${dayOf.weekOf}`)
              return problems
            }
          })
        }
      }
      case 'publish': {
        // Own weeks but the pinned one, either way; other schools' ids only ever published.
        const candidates = liveWeeks(school, (w) => !w.pinned)
        const own = r1 < 0.8 ? pick(candidates, r2) : undefined
        const id = own?.id ?? someWeekId(bySlug.get(others(school, 1, r5)[0] as string) as SchoolState, 0, r2).id
        const isPublished = own === undefined ? true : r6 < 0.6
        const mustExist = own?.seed === true
        return {
          shape,
          request: { method: 'PATCH', url: `/api/lunch-weeks/${id}`, headers: jsonHeaders(headers), payload: JSON.stringify({ isPublished }) },
          expectation: expect({
            ...weekExpectation(operation, school, mustExist ? [200] : [200, 404], { id, codes: { 404: 'LUNCH_WEEK_NOT_FOUND' }, write: true }),
            check: (body) => {
              const problems = weekProblems(school, body, true)
              if (isWeek(body) && body.id !== id) problems.push(`published week ${id}, got ${body.id}`)
              if (isWeek(body) && body.isPublished !== isPublished) problems.push(`isPublished ${String(body.isPublished)}, sent ${String(isPublished)}`)
              return problems
            }
          })
        }
      }
      case 'delete': {
        // Only this school's own unseeded weeks: seeded weeks must survive the run.
        const week = pick(liveWeeks(school, (w) => !w.seed), r1)
        if (week === undefined) {
          return {
            shape,
            request: { method: 'GET', url: '/api/lunch-weeks', headers },
            expectation: expect({ operation: 'list', statuses: [200], owner: school.slug, check: (body) => Array.isArray(body) ? body.flatMap((w) => weekProblems(school, w, false)) : ['not an array'] })
          }
        }
        return {
          shape,
          request: { method: 'DELETE', url: `/api/lunch-weeks/${week.id}`, headers },
          expectation: expect({ operation, statuses: [204, 404], codes: { 404: 'LUNCH_WEEK_NOT_FOUND' }, owner: school.slug, write: true }),
          after: (status) => { if (refusal === null && (status === 204 || status === 404)) week.deleted = true }
        }
      }
      case 'me':
        return {
          shape,
          request: { method: 'GET', url: '/api/me', headers },
          expectation: expect({
            operation,
            statuses: [200],
            owner: school.slug,
            check: (body) => {
              const me = body as { subject?: unknown, school?: { slug?: unknown, name?: unknown }, schools?: unknown }
              const problems: string[] = []
              if (me.subject !== auth.subject) problems.push(`subject ${String(me.subject)}, token has ${String(auth.subject)}`)
              if (me.school?.slug !== school.slug) problems.push(`school ${String(me.school?.slug)}, token names ${school.slug}`)
              const names = options.schoolNames
              if (names !== undefined && me.school?.name !== names[school.slug]) problems.push(`name ${String(me.school?.name)}, wanted ${String(names[school.slug])}`)
              const listed = Array.isArray(me.schools) ? [...me.schools as string[]].sort() : null
              if (listed === null || listed.join(',') !== [...auth.allowed].sort().join(',')) {
                problems.push(`schools ${JSON.stringify(me.schools)}, token allows ${JSON.stringify(auth.allowed)}`)
              }
              return problems
            }
          })
        }
      default:
        throw new Error(`no operation ${operation}`)
    }
  }

  const started = performance.now()
  let done = 0
  await runPool(plans, options.concurrency, async (plan) => {
    const { request, expectation, shape, after } = buildLoadRequest(plan)
    const { status } = await perform('load', request, expectation, shape)
    after?.(status)
    done++
    if (options.onProgress !== undefined && (done % 1000 === 0 || done === plans.length)) options.onProgress(done, plans.length)
  })
  result.durationMs = Math.round(performance.now() - started)

  // ---- sweep: read everything back, so a write that went to the wrong database shows ----

  if (options.sweep !== false) {
    await runPool(schools, options.concurrency, async (school) => {
      const headers = { authorization: `Bearer ${singleToken(school.slug, subject())}` }
      const listed = await perform('sweep', { method: 'GET', url: '/api/lunch-weeks', headers }, {
        operation: 'list',
        statuses: [200],
        owner: school.slug,
        check: (body) => Array.isArray(body) ? body.flatMap((w) => weekProblems(school, w, false)) : ['not an array']
      }, 'single')
      if (!Array.isArray(listed.body)) return
      for (const week of listed.body as WeekBody[]) {
        if (!isWeek(week)) continue
        await perform('sweep', { method: 'GET', url: `/api/lunch-weeks/${week.id}`, headers },
          weekExpectation('get', school, [200, 404], { id: week.id, codes: { 404: 'LUNCH_WEEK_NOT_FOUND' } }), 'single')
      }
    })
  }
  return result
}

/** Unexpected responses counted by reason, numbers and dates folded (`week N (D) came back without its days`). */
export function summarizeReasons (unexpected: Unexpected[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const u of unexpected) {
    const reason = `${u.operation}: ${u.reason.replace(/\d{4}-\d{2}-\d{2}/g, 'D').replace(/\d+/g, 'N')}`
    counts[reason] = (counts[reason] ?? 0) + 1
  }
  return counts
}

/** Every string in a JSON value, with its path. */
function scan (value: unknown, at: string, visit: (field: string, value: string) => void): void {
  if (typeof value === 'string') {
    visit(at, value)
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => scan(item, `${at}[${i}]`, visit))
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) scan(item, `${at}.${key}`, visit)
  }
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

const USAGE = `Usage: npx tsx scripts/isolation.ts [options]

  --schools <n>       schools iso-001 … iso-<n> to create, migrate and drive (2 to 999, default 200)
  --requests <n>      interleaved requests of the load phase (default 50000)
  --concurrency <n>   requests in flight at once (1 to 1024, default 64)
  --seed <n>          seed of the request plan (default 1)
  --help              this text

Uses the configured database (DATABASE_URL, or the embedded server of
EMBEDDED_PG_DIR / EMBEDDED_PG_PORT). Exit code 0 when no response leaked and
none was unexpected, 1 otherwise, 2 for a bad command line.`

interface CommandLine { schools: number, requests: number, concurrency: number, seed: number }

function usageError (message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`)
  process.exit(2)
}

function parseCommandLine (): CommandLine {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        schools: { type: 'string' },
        requests: { type: 'string' },
        concurrency: { type: 'string' },
        seed: { type: 'string' },
        help: { type: 'boolean', default: false }
      },
      strict: true,
      allowPositionals: false
    }))
  } catch (error) {
    usageError((error as Error).message)
  }
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`)
    process.exit(0)
  }
  const whole = (name: string, raw: string | undefined, fallback: number, min: number, max: number): number => {
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!/^\d+$/.test(raw) || n < min || n > max) usageError(`--${name} must be a whole number from ${min} to ${max} (got "${raw}")`)
    return n
  }
  return {
    schools: whole('schools', values.schools, 200, 2, 999),
    requests: whole('requests', values.requests, 50_000, 1, 10_000_000),
    concurrency: whole('concurrency', values.concurrency, 64, 1, 1024),
    seed: whole('seed', values.seed, 1, 0, 4_294_967_295)
  }
}

async function main (): Promise<void> {
  const args = parseCommandLine()
  // Imported here so that importing runIsolationCheck pulls in nothing else.
  const [{ createSigner }, { loadConfigOrExit }, { resolveTopology }, { openCatalog, prepareCatalog }, { hasFailures, migrateSchools }, { buildApp }] =
    await Promise.all([
      import('fast-jwt'), import('../src/config.js'), import('../src/postgres/topology.js'), import('../src/catalog/catalog.js'),
      import('../src/fleet/migrate-schools.js'), import('../src/app.js')
    ])
  const config = loadConfigOrExit()
  if (config.jwt.secret === null) usageError('This check signs its tokens with JWT_SECRET (HS256); it cannot run with JWT_PUBLIC_KEY.')
  const secret = config.jwt.secret

  const topology = await resolveTopology(config)
  let app: Awaited<ReturnType<typeof buildApp>> | null = null
  const finish = async (code: number): Promise<never> => {
    if (app !== null) await app.close().catch(() => {})
    topology.release()
    process.exit(code)
  }
  process.once('SIGINT', () => { void finish(130) })
  process.once('SIGTERM', () => { void finish(143) })

  try {
    const slugs = Array.from({ length: args.schools }, (_, i) => `iso-${String(i + 1).padStart(3, '0')}`)
    const names = Object.fromEntries(slugs.map((slug) => [slug, `Isolation school ${slug.slice(4)}`]))
    const started = Date.now()
    await prepareCatalog(topology.catalogUrl)
    const catalog = openCatalog(topology.catalogUrl, 1)
    try {
      await catalog('schools')
        .insert(slugs.map((slug) => ({ slug, name: names[slug], database_name: slug.replace('-', '_') })))
        .onConflict().ignore()
      const rows = await catalog('schools').whereIn('slug', slugs).select<Array<{ slug: string, name: string, database_name: string, status: string }>>('slug', 'name', 'database_name', 'status')
      const wrong = rows.filter((r) => r.status !== 'active' || r.database_name !== r.slug.replace('-', '_'))
      if (rows.length !== slugs.length || wrong.length > 0) {
        process.stderr.write(`The catalog holds iso-NNN schools this check cannot use (suspended, or another database): ${wrong.map((r) => r.slug).join(', ')}\n`)
        return await finish(1)
      }
      for (const row of rows) names[row.slug] = row.name
    } finally {
      await catalog.destroy()
    }
    const report = await migrateSchools(topology, { concurrency: config.migrateConcurrency, only: slugs })
    if (hasFailures(report)) {
      for (const s of report.schools.filter((s) => s.error !== null)) process.stderr.write(`migrate ${s.slug}: ${s.error}\n`)
      return await finish(1)
    }
    const created = report.schools.filter((s) => s.database === 'created').length
    process.stdout.write(`Schools: ${slugs.length} (${created} database(s) created), ready in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`)

    app = await buildApp({ config, catalogUrl: topology.catalogUrl, servers: topology.servers, logger: { level: 'warn' } })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    if (address === null || typeof address === 'string') throw new Error('the server has no TCP address')
    const origin = `http://127.0.0.1:${address.port}`

    const sign = createSigner({
      key: secret,
      algorithm: 'HS256',
      expiresIn: 600_000,
      ...(config.jwt.issuer === null ? {} : { iss: config.jwt.issuer }),
      ...(config.jwt.audience === null ? {} : { aud: config.jwt.audience })
    })
    const send: Send = async (request) => {
      const response = await fetch(`${origin}${request.url}`, {
        method: request.method,
        headers: request.headers,
        ...(request.payload === undefined ? {} : { body: request.payload })
      })
      return { statusCode: response.status, body: await response.text() }
    }

    process.stdout.write(`Load: ${args.requests} requests, ${args.concurrency} in flight, seed ${args.seed}, on ${origin}\n`)
    const result = await runIsolationCheck({
      send,
      schools: slugs,
      requests: args.requests,
      concurrency: args.concurrency,
      seed: args.seed,
      token: (claims) => sign(claims),
      schoolClaim: config.jwt.schoolClaim,
      schoolsClaim: config.jwt.schoolsClaim,
      schoolNames: names,
      onProgress: process.stderr.isTTY ? (done, total) => process.stderr.write(`\r  ${done}/${total}   `) : undefined
    })
    if (process.stderr.isTTY) process.stderr.write('\n')
    printSummary(result)
    return await finish(result.leaks.length > 0 || result.unexpected.length > 0 ? 1 : 0)
  } catch (error) {
    process.stderr.write(`Isolation check stopped: ${(error as Error).stack ?? String(error)}\n`)
    return await finish(1)
  }
}

function printSummary (result: IsolationResult): void {
  const seconds = result.durationMs / 1000
  const statuses = Object.entries(result.byStatus).sort(([a], [b]) => Number(a) - Number(b)).map(([s, n]) => `${s}: ${n}`).join(', ')
  const operations = Object.entries(result.byOperation).map(([s, n]) => `${s} ${n}`).join(', ')
  const shapes = Object.entries(result.byTokenShape).map(([s, n]) => `${s} ${n}`).join(', ')
  const lines = [
    '',
    `Requests:    ${result.requests} in ${seconds.toFixed(1)} s (${Math.round(result.requests / Math.max(seconds, 0.001))} req/s)` +
      `, plus ${result.seedRequests} to seed and ${result.sweepRequests} to read back`,
    `Statuses:    ${statuses}`,
    `Operations:  ${operations}`,
    `Tokens:      ${shapes}`,
    `Writes:      ${Object.values(result.writesBySchool).reduce((a, b) => a + b, 0)} across ${Object.keys(result.writesBySchool).length} school(s)`,
    `Leaks:       ${result.leaks.length}`,
    `Unexpected:  ${result.unexpected.length}`
  ]
  const reasons = summarizeReasons(result.unexpected)
  if (Object.keys(reasons).length > 0) lines.push(`  unexpected by reason: ${JSON.stringify(reasons)}`)
  for (const leak of result.leaks.slice(0, 10)) lines.push(`  LEAK ${JSON.stringify(leak)}`)
  for (const u of result.unexpected.slice(0, 10)) lines.push(`  UNEXPECTED ${JSON.stringify(u)}`)
  if (result.leaks.length + result.unexpected.length > 20) lines.push('  …')
  lines.push(result.leaks.length === 0 && result.unexpected.length === 0 ? 'OK: every response belonged to the school it was asked for.' : 'FAILED.')
  process.stdout.write(lines.join('\n') + '\n')
}

const invokedPath = process.argv[1] === undefined ? '' : path.resolve(process.argv[1])
if (invokedPath === fileURLToPath(import.meta.url)) await main()
