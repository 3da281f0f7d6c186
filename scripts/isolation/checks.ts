import { weekdaysOf } from '../../src/lunch/repository.js'
import { ownerOfDate } from './calendar.js'
import {
  increment, type Answered, type Expectation, type IsolationRequest, type IsolationResponse, type IsolationResult, type Phase,
  type SchoolState, type Send, type WeekBody
} from './types.js'

/*
 * How a leak is recognised: every menu a school writes reads
 * `menu of <slug> #<n>`, and every date belongs to one school (calendar.ts).
 * So any menu text, date or slug in a body tells whose data it is.
 */
const MARKER = /menu of ([a-z0-9_-]+) #(\d+)/
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/

export interface Performed { status: number, body: unknown, ok: boolean }

export interface Checks {
  /** The school a plain date belongs to, or null. */
  ownerOf: (date: string) => string | null
  /** Sends one request, checks its answer against `expectation` and counts it. */
  perform: (phase: Phase, request: IsolationRequest, expectation: Expectation, shape: string) => Promise<Performed>
  /** Problems of a body that should be a week of `school`. */
  weekProblems: (school: SchoolState, value: unknown, withDays: boolean) => string[]
  /** Remembers what a validated week body says (new ids, day ids). */
  learn: (school: SchoolState, week: WeekBody) => void
  /** The expectation of a request answered with one week of `school`. */
  weekExpectation: (operation: string, school: SchoolState, statuses: number[], extra?: Partial<Expectation> & { id?: number, withDays?: boolean }) => Expectation
  /** The expectation of GET /api/lunch-weeks for `school`. */
  listExpectation: (school: SchoolState) => Expectation
}

export function isWeek (value: unknown): value is WeekBody {
  const w = value as WeekBody | null
  return w !== null && typeof w === 'object' && typeof w.id === 'string' && Number.isSafeInteger(Number(w.id)) && typeof w.weekOf === 'string' && typeof w.isPublished === 'boolean'
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

function snippet (body: string): string {
  return body.length > 300 ? `${body.slice(0, 300)}…` : body
}

/** Whose data a run can recognise: the schools' slugs, and the owner of a date. */
interface Owners { slugs: Set<string>, ownerOf: (date: string) => string | null }

/** Whatever the status: no data of another school, anywhere in the body. */
function findLeaks ({ slugs, ownerOf }: Owners, body: unknown, owner: string | null, leak: (field: string, value: string, found: string | null) => void): void {
  scan(body, '$', (field, value) => {
    const marker = MARKER.exec(value)
    if (marker !== null) {
      const found = marker[1] as string
      if (found !== owner) leak(field, value, slugs.has(found) ? found : null)
      return
    }
    if (DATE_ONLY.test(value)) {
      const found = ownerOf(value)
      if (found !== owner) leak(field, value, found)
      return
    }
    if (slugs.has(value) && value !== owner && !field.startsWith('$.schools[')) leak(field, value, value)
  })
}

/** Problems of the status, the error code or the body; the body's leaks are found apart. */
function answerProblems (expectation: Expectation, response: IsolationResponse, body: unknown, clean: boolean): string[] {
  const { statusCode } = response
  if (statusCode >= 500) return ['server error']
  if (!expectation.statuses.includes(statusCode)) return ['status not expected for this request']
  if (statusCode >= 400) {
    const code = (body as { code?: unknown } | null)?.code
    const wanted = expectation.codes?.[statusCode]
    if (typeof code !== 'string') return ['error body without a code']
    return wanted !== undefined && code !== wanted ? [`error code ${code}, wanted ${wanted}`] : []
  }
  if (statusCode === 204) return response.body !== '' ? ['204 with a body'] : []
  if (body === null) return clean ? ['no body'] : []
  return expectation.check?.(body, statusCode) ?? []
}

/** Checks one answer, records its leaks and surprises in `result`; whether it was clean, and its body (null when empty or not JSON). */
function record (owners: Owners, result: IsolationResult, answered: Answered, expectation: Expectation, response: IsolationResponse): { ok: boolean, body: unknown } {
  const codes = expectation.codes === undefined ? '' : ` (${Object.entries(expectation.codes).map(([s, c]) => `${s} ${c}`).join(', ')})`
  const unexpected = (reason: string): void => {
    result.unexpected.push({ ...answered, expected: `${expectation.statuses.join('|')}${codes}`, reason, body: snippet(response.body) })
  }
  let ok = true
  let body: unknown = null
  if (response.body !== '') {
    try {
      body = JSON.parse(response.body)
    } catch {
      unexpected('the body is not JSON')
      ok = false
    }
  }
  findLeaks(owners, body, expectation.owner, (field, value, foundSchool) => {
    ok = false
    result.leaks.push({ ...answered, expectedSchool: expectation.owner, foundSchool, field, value })
  })
  for (const problem of answerProblems(expectation, response, body, ok)) {
    unexpected(problem)
    ok = false
  }
  if (ok && expectation.write === true && response.statusCode < 300 && expectation.owner !== null) increment(result.writesBySchool, expectation.owner)
  return { ok, body }
}

function count (result: IsolationResult, phase: Phase, expectation: Expectation, shape: string, statusCode: number): void {
  if (phase === 'load') {
    increment(result.byStatus, statusCode)
    increment(result.byOperation, expectation.operation)
    increment(result.byTokenShape, shape)
  } else if (phase === 'seed') {
    result.seedRequests++
  } else {
    result.sweepRequests++
  }
}

/** A week of `school`: its own Monday, its five weekdays, its own menus, and the weekOf its id was created with. */
function weekProblems (ownerOf: Owners['ownerOf'], school: SchoolState, value: unknown, withDays: boolean): string[] {
  if (!isWeek(value)) return ['not a lunch week']
  const problems: string[] = []
  if (ownerOf(value.weekOf) !== school.slug) problems.push(`weekOf ${value.weekOf} is not one of ${school.slug}'s Mondays`)
  const known = school.weeks.get(Number(value.id))
  if (known !== undefined && known.weekOf !== value.weekOf) problems.push(`week ${value.id} of ${school.slug} was ${known.weekOf}, now ${value.weekOf}`)
  if (!withDays) return problems
  if (!Array.isArray(value.days)) return [...problems, 'no days']
  const dates = value.days.map((d) => d.day)
  if (dates.length === 0) problems.push(`week ${value.id} (${value.weekOf}) came back without its days`)
  else if (dates.join(',') !== weekdaysOf(value.weekOf).join(',')) problems.push(`days ${dates.join(',')} are not the weekdays of ${value.weekOf}`)
  for (const day of value.days) {
    if (day.menuDetails !== '' && MARKER.exec(day.menuDetails)?.[1] !== school.slug) problems.push(`menu "${day.menuDetails}" is not ${school.slug}'s`)
  }
  return problems
}

function learn (school: SchoolState, week: WeekBody): void {
  const id = Number(week.id)
  const known = school.weeks.get(id)
  const days = Array.isArray(week.days) ? week.days.map((d) => Number(d.id)) : []
  if (known === undefined) {
    school.weeks.set(id, { id, weekOf: week.weekOf, days, seed: false, pinned: false, deleted: false })
  } else if (days.length > 0) {
    known.days = days
  }
}

async function perform (send: Send, owners: Owners, result: IsolationResult, phase: Phase, request: IsolationRequest, expectation: Expectation, shape: string): Promise<Performed> {
  const answered = { phase, operation: expectation.operation, tokenShape: shape, method: request.method, url: request.url, statusCode: 0 }
  let response: IsolationResponse
  try {
    response = await send(request)
  } catch (error) {
    result.unexpected.push({ ...answered, expected: expectation.statuses.join('|'), reason: `transport error: ${(error as Error).message}`, body: '' })
    return { status: 0, body: null, ok: false }
  }
  count(result, phase, expectation, shape, response.statusCode)
  const { ok, body } = record(owners, result, { ...answered, statusCode: response.statusCode }, expectation, response)
  return { status: response.statusCode, body, ok }
}

export function createChecks (send: Send, slugs: string[], result: IsolationResult): Checks {
  const ownerOf = (date: string): string | null => ownerOfDate(slugs, date)
  const owners: Owners = { slugs: new Set(slugs), ownerOf }
  return {
    ownerOf,
    perform: async (phase, request, expectation, shape) => await perform(send, owners, result, phase, request, expectation, shape),
    weekProblems: (school, value, withDays) => weekProblems(ownerOf, school, value, withDays),
    learn,
    weekExpectation: (operation, school, statuses, extra = {}) => {
      const { id, withDays = true, ...rest } = extra
      return {
        operation,
        statuses,
        owner: school.slug,
        check: (body) => {
          const problems = weekProblems(ownerOf, school, body, withDays)
          if (id !== undefined && isWeek(body) && body.id !== String(id)) problems.push(`asked for week ${id}, got ${body.id}`)
          if (problems.length === 0 && isWeek(body)) learn(school, body)
          return problems
        },
        ...rest
      }
    },
    listExpectation: (school) => ({
      operation: 'list',
      statuses: [200],
      owner: school.slug,
      check: (body) => Array.isArray(body) ? body.flatMap((w) => weekProblems(ownerOf, school, w, false)) : ['not an array']
    })
  }
}
