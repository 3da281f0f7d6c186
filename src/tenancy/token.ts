import {
  AuthKeysUnavailable, SchoolClaimInvalid, SchoolClaimMissing, SchoolHeaderInvalid, SchoolNotAllowed, SchoolNotSelected,
  TokenExpired, TokenInvalid, TokenMalformed, TokenMissing, TokenNotYetValid
} from '../errors.js'
import { isSafeName } from '../postgres/names.js'

/** Tokens longer than this are refused before any parsing. */
export const MAX_TOKEN_LENGTH = 8 * 1024
const MAX_ALLOWED_SCHOOLS = 1_000

export type Claims = Record<string, unknown>

/** Every Authorization value the client sent: Node keeps only the first in `headers`. */
export function authorizationValues (rawHeaders: string[]): string[] {
  const values: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === 'authorization') values.push(rawHeaders[i + 1] ?? '')
  }
  return values
}

/**
 * The token from `Authorization: Bearer <token>`. Sent twice is refused: a
 * proxy that reads the other one would see another identity than we do.
 */
export function bearerToken (values: string[]): string {
  if (values.length > 1) throw new TokenMalformed('send one Authorization header')
  const header = values[0]
  if (header === undefined || header === '') throw new TokenMissing()
  const match = /^Bearer ([^\s]+)$/i.exec(header.trim())
  if (match?.[1] === undefined) throw new TokenMalformed('expected "Bearer <token>"')
  if (match[1].length > MAX_TOKEN_LENGTH) throw new TokenMalformed(`longer than ${MAX_TOKEN_LENGTH} characters`)
  return match[1]
}

/** Verifies with the app's one verifier and turns fast-jwt's failures into our codes. */
export async function verifyToken (verify: (token: string) => unknown, token: string): Promise<Claims> {
  let payload: unknown
  try {
    payload = await verify(token)
  } catch (error) {
    // The key set answers for itself (unknown kid, keys unavailable).
    if (error instanceof TokenInvalid || error instanceof AuthKeysUnavailable) throw error
    throw tokenError(error)
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new TokenMalformed('the payload is not a JSON object')
  }
  return payload as Claims
}

function tokenError (error: unknown): Error {
  const code = (error as { code?: string }).code
  switch (code) {
    case 'FAST_JWT_EXPIRED': return new TokenExpired()
    case 'FAST_JWT_INACTIVE': return new TokenNotYetValid()
    case 'FAST_JWT_MALFORMED':
    case 'FAST_JWT_INVALID_TYPE':
    case 'FAST_JWT_INVALID_PAYLOAD':
      return new TokenMalformed('it could not be decoded')
    case 'FAST_JWT_INVALID_ALGORITHM': return new TokenInvalid('algorithm not allowed')
    case 'FAST_JWT_MISSING_SIGNATURE': return new TokenInvalid('unsigned tokens are not accepted')
    case 'FAST_JWT_INVALID_SIGNATURE': return new TokenInvalid('bad signature')
    case 'FAST_JWT_INVALID_CLAIM_VALUE':
    case 'FAST_JWT_INVALID_CLAIM_TYPE':
    case 'FAST_JWT_MISSING_REQUIRED_CLAIM':
      return new TokenInvalid('issuer, audience or another registered claim does not match')
    default: return new TokenInvalid('it could not be verified')
  }
}

export interface SchoolChoice {
  /** The active school's slug. */
  slug: string
  /** Every slug the token allows, for /api/me. */
  allowed: string[]
}

export interface ClaimNames { schoolClaim: string, schoolsClaim: string }

/**
 * The slugs a token allows, from its single-school claim and its list
 * claim, each checked; the single one, if any, comes first.
 */
export function allowedSchools (claims: Claims, names: ClaimNames): { single: string | null, allowed: string[] } {
  const single = claims[names.schoolClaim]
  if (single !== undefined && !isSafeName(single)) throw new SchoolClaimInvalid(names.schoolClaim)

  const list = claims[names.schoolsClaim]
  if (list !== undefined && (!Array.isArray(list) || list.length > MAX_ALLOWED_SCHOOLS || !list.every(isSafeName))) {
    throw new SchoolClaimInvalid(names.schoolsClaim)
  }
  const allowed = [...new Set([...(single === undefined ? [] : [single]), ...((list as string[] | undefined) ?? [])])]
  if (allowed.length === 0) throw new SchoolClaimMissing(names.schoolClaim)
  return { single: single ?? null, allowed }
}

/**
 * Which school this request acts for, by default: the single-school claim
 * names the school; a list claim names those a user may switch between
 * with X-School. The header is honoured only for a slug the token allows.
 */
export function chooseSchool (claims: Claims, header: string | string[] | undefined, names: ClaimNames): SchoolChoice {
  const { single, allowed } = allowedSchools(claims, names)
  if (header !== undefined) {
    if (typeof header !== 'string') throw new SchoolHeaderInvalid('send the header once')
    if (!isSafeName(header)) throw new SchoolHeaderInvalid('lowercase letters, digits, _ and -')
    if (!allowed.includes(header)) throw new SchoolNotAllowed(header)
    return { slug: header, allowed }
  }
  if (single !== null) return { slug: single, allowed }
  if (allowed.length === 1) return { slug: allowed[0] as string, allowed }
  throw new SchoolNotSelected()
}
