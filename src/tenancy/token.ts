import type { Claims } from '../auth/plugin.js'
import { SchoolClaimInvalid, SchoolClaimMissing, SchoolHeaderInvalid, SchoolNotAllowed, SchoolNotSelected } from '../errors.js'
import { isSafeName } from '../postgres/names.js'

export type { Claims }

const MAX_ALLOWED_SCHOOLS = 1_000

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
