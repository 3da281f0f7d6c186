/* The isolation check's public shapes, and the state one run keeps about each school. */

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
  onProgress?: (progress: { done: number, total: number }) => void
}

export type Phase = 'seed' | 'load' | 'sweep'

/** Which request of the run a finding is about. */
export interface Answered {
  phase: Phase
  operation: string
  tokenShape: string
  method: string
  url: string
  statusCode: number
}

export interface Leak extends Answered {
  /** The school the response may speak of; null when it may speak of none (a refused request). */
  expectedSchool: string | null
  /** Whose data was found; null when it is no school's known data. */
  foundSchool: string | null
  /** Where in the body, e.g. `$[2].days[0].menuDetails`. */
  field: string
  value: string
}

export interface Unexpected extends Answered {
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

export interface KnownWeek {
  id: number
  weekOf: string
  days: number[]
  seed: boolean
  /** The seeded week that stays published: the public page of its Monday must answer 200. */
  pinned: boolean
  deleted: boolean
}

export interface SchoolState {
  slug: string
  index: number
  weeks: Map<number, KnownWeek>
}

/** What a request expects back, and how to check a successful body. */
export interface Expectation {
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

/** A request of the load with what it must answer; `after` learns from the status. */
export interface PlannedRequest {
  request: IsolationRequest
  expectation: Expectation
  shape: string
  after?: (status: number) => void
}

// The API's ids are decimal strings; the check keeps them as numbers (KnownWeek).
export interface DayBody { id: string, day: string, menuDetails: string }
export interface WeekBody { id: string, weekOf: string, isPublished: boolean, days?: DayBody[] }

/** Counts one more of `key`. */
export function increment (counts: Record<string | number, number>, key: string | number): void {
  counts[key] = (counts[key] ?? 0) + 1
}
