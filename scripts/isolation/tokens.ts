import type { SchoolState } from './types.js'

export type TokenShape =
  | 'single' | 'multi' | 'cross' | 'expired' | 'badSignature' | 'forgedPayload' | 'algNone' | 'unknownSchool' | 'missing'

export interface Auth {
  headers: Record<string, string>
  /** Slugs the token allows (for /api/me). */
  allowed: string[]
  subject: string | null
  /** When refused: the status and code the refusal must carry. */
  refusal: { status: number, code: string } | null
}

export interface Tokens {
  /** A fresh subject (`iso-user-N`). */
  subject: () => string
  /** A good token naming one school. */
  single: (slug: string, sub: string) => string
  /** `count` schools other than `school`, consecutive from a random start. */
  others: (school: SchoolState, count: number, roll: number) => string[]
  /** Headers of the given shape for a request acting for `school`. */
  authFor: (shape: TokenShape, school: SchoolState, r1: number, r2: number) => Auth
}

interface Builder {
  tokens: Tokens
  claim: string
  claims: string
  sign: (claims: Record<string, unknown>) => string
  schools: SchoolState[]
  school: SchoolState
  sub: string
  r1: number
  r2: number
  good: (headers: Record<string, string>, allowed: string[]) => Auth
  refused: (headers: Record<string, string>, status: number, code: string) => Auth
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const b64url = (value: string): string => Buffer.from(value).toString('base64url')
const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** One small builder per token shape: good tokens, and every way a token is refused. */
const SHAPES: Record<TokenShape, (b: Builder) => Auth> = {
  single: (b) => b.good(bearer(b.tokens.single(b.school.slug, b.sub)), [b.school.slug]),

  multi: (b) => {
    const list = [...b.tokens.others(b.school, 1 + Math.floor(b.r1 * 3), b.r2)]
    list.splice(Math.floor(b.r1 * (list.length + 1)), 0, b.school.slug)
    const claims: Record<string, unknown> = { sub: b.sub, [b.claims]: list }
    // Sometimes the single claim names another school of the list too: X-School still decides.
    if (b.r2 < 0.3 && list.length > 1) claims[b.claim] = list.find((s) => s !== b.school.slug)
    const allowed = [...new Set([...(typeof claims[b.claim] === 'string' ? [claims[b.claim] as string] : []), ...list])]
    return b.good({ ...bearer(b.sign(claims)), 'x-school': b.school.slug }, allowed)
  },

  // A token for `school` (alone or with a few others) asking for a school it does not allow.
  cross: (b) => {
    const { schools, school } = b
    const allowed = b.r1 < 0.5 || schools.length < 3 ? [school.slug] : [school.slug, ...b.tokens.others(school, Math.min(2, schools.length - 2), b.r2)]
    const target = schools.find((s, i) => i >= Math.floor(b.r2 * schools.length) && !allowed.includes(s.slug)) ??
      schools.find((s) => !allowed.includes(s.slug)) as SchoolState
    const claims = allowed.length === 1 ? { sub: b.sub, [b.claim]: school.slug } : { sub: b.sub, [b.claims]: allowed }
    return b.refused({ ...bearer(b.sign(claims)), 'x-school': target.slug }, 403, 'SCHOOL_NOT_ALLOWED')
  },

  expired: (b) => {
    const now = nowSeconds()
    return b.refused(bearer(b.sign({ sub: b.sub, [b.claim]: b.school.slug, iat: now - 10 * 86_400, exp: now - 9 * 86_400 })), 401, 'TOKEN_EXPIRED')
  },

  badSignature: (b) => {
    const [header, payload, signature = ''] = b.tokens.single(b.school.slug, b.sub).split('.')
    // Change a character in the middle: the last one may only carry padding bits.
    const at = Math.floor(signature.length / 2)
    const flipped = signature[at] === 'A' ? 'B' : 'A'
    return b.refused(bearer(`${header}.${payload}.${signature.slice(0, at)}${flipped}${signature.slice(at + 1)}`), 401, 'TOKEN_INVALID')
  },

  // The payload of a token for another school under this school's signature.
  forgedPayload: (b) => {
    const victim = b.tokens.others(b.school, 1, b.r1)[0] as string
    const [header, , signature] = b.tokens.single(b.school.slug, b.sub).split('.')
    const payload = b.tokens.single(victim, b.sub).split('.')[1]
    return b.refused({ ...bearer(`${header}.${payload}.${signature}`), ...(b.r2 < 0.5 ? { 'x-school': victim } : {}) }, 401, 'TOKEN_INVALID')
  },

  algNone: (b) => {
    const jwt = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: b.sub, [b.claim]: b.school.slug, iat: nowSeconds() }))}.`
    return b.refused(bearer(jwt), 401, 'TOKEN_INVALID')
  },

  unknownSchool: (b) => b.refused(bearer(b.tokens.single(`iso-unknown-${Math.floor(b.r1 * 1000)}`, b.sub)), 403, 'SCHOOL_UNKNOWN'),

  missing: (b) => b.refused({}, 401, 'TOKEN_MISSING')
}

/** Tokens of every shape, signed with `sign` and carrying the configured claim names. */
export function createTokens (sign: (claims: Record<string, unknown>) => string, schools: SchoolState[], claim: string, claims: string): Tokens {
  let subjects = 0
  const tokens: Tokens = {
    subject: () => `iso-user-${++subjects}`,
    single: (slug, sub) => sign({ sub, [claim]: slug }),
    others: (school, count, roll) => {
      const picked: string[] = []
      const start = Math.floor(roll * schools.length)
      for (let j = 0; j < schools.length && picked.length < count; j++) {
        const candidate = schools[(start + j) % schools.length] as SchoolState
        if (candidate !== school) picked.push(candidate.slug)
      }
      return picked
    },
    authFor: (shape, school, r1, r2) => {
      const sub = tokens.subject()
      return SHAPES[shape]({
        tokens,
        claim,
        claims,
        sign,
        schools,
        school,
        sub,
        r1,
        r2,
        good: (headers, allowed) => ({ headers, allowed, subject: sub, refusal: null }),
        refused: (headers, status, code) => ({ headers, allowed: [], subject: null, refusal: { status, code } })
      })
    }
  }
  return tokens
}
