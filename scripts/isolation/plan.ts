import type { Checks } from './checks.js'
import type { TokenShape, Tokens } from './tokens.js'
import type { KnownWeek, SchoolState } from './types.js'

export type Operation = 'list' | 'get' | 'create' | 'menu' | 'publish' | 'delete' | 'me' | 'public'

/** Per load request: every random number it will need, drawn up front so a seed fixes the plan. */
export interface Plan { op: number, shape: number, school: number, r: [number, number, number, number, number, number] }

/** The mix of the load: operations and token shapes, by weight. */
export const OPERATION_WEIGHTS: Array<[Operation, number]> = [
  ['list', 14], ['get', 17], ['create', 11], ['menu', 16], ['publish', 9], ['delete', 4], ['me', 9], ['public', 20]
]
export const SHAPE_WEIGHTS: Array<[TokenShape, number]> = [
  ['single', 42], ['multi', 25], ['cross', 11], ['expired', 5], ['badSignature', 5], ['forgedPayload', 4],
  ['algNone', 2], ['unknownSchool', 3], ['missing', 3]
]

/** What the builders of load requests share: the schools as known so far, tokens and checks. */
export interface Fleet {
  schools: SchoolState[]
  bySlug: Map<string, SchoolState>
  tokens: Tokens
  checks: Checks
  /** When given, /api/me must answer these names. */
  schoolNames: Record<string, string> | undefined
  /** A menu text no one has written yet, marked as `slug`'s. */
  nextMenu: (slug: string) => string
  /** The largest week id seen while seeding. */
  maxKnownId: number
}

export function drawPlans (random: () => number, count: number): Plan[] {
  return Array.from({ length: count }, () => ({
    op: random(),
    shape: random(),
    school: random(),
    r: [random(), random(), random(), random(), random(), random()]
  }))
}

export function pickWeighted<T> (table: Array<[T, number]>, roll: number): T {
  const total = table.reduce((sum, [, w]) => sum + w, 0)
  let x = roll * total
  for (const [value, weight] of table) {
    if (x < weight) return value
    x -= weight
  }
  return (table.at(-1) as [T, number])[0]
}

export function pick<T> (items: readonly T[], roll: number): T | undefined {
  return items.length === 0 ? undefined : items[Math.min(items.length - 1, Math.floor(roll * items.length))]
}

export const liveWeeks = (school: SchoolState, filter: (w: KnownWeek) => boolean = () => true): KnownWeek[] =>
  [...school.weeks.values()].filter((w) => !w.deleted && filter(w))

/** A week id to send to `school`: one of its own, another school's (ids overlap), or any small id. */
export function someWeekId (fleet: Fleet, school: SchoolState, r1: number, r2: number): { id: number, own: KnownWeek | undefined } {
  if (r1 < 0.5) {
    const own = pick(liveWeeks(school), r2)
    if (own !== undefined) return { id: own.id, own }
  }
  if (r1 < 0.8) {
    const other = pick(fleet.schools, r2) as SchoolState
    const week = pick([...other.weeks.values()], (r2 * 7919) % 1)
    if (week !== undefined) return { id: week.id, own: school.weeks.get(week.id) }
  }
  const id = 1 + Math.floor(r2 * (fleet.maxKnownId + 3))
  return { id, own: school.weeks.get(id) }
}
