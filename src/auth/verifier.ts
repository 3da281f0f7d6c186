import { createDecoder, createVerifier } from 'fast-jwt'
import type { JwtConfig } from '../config.js'
import type { RemoteKeys } from './remote-keys.js'

/** Verifies a token and returns its payload, or a promise of it when a key must be fetched first. */
export interface TokenVerifier {
  (token: string): unknown
  /** Drops what was verified with these kids (keys removed from the set). */
  forget: (kids: readonly string[]) => void
  /** Tokens held in fast-jwt's caches of verified tokens. */
  cachedTokens: () => number
}

// Verified tokens remembered per key (bounded, never past their exp).
const VERIFIED_TOKENS_CACHED = 10_000
// Distinct token headers remembered; forged kids only churn this small map.
const HEADERS_CACHED = 1_000

type Verify = (token: string) => unknown
interface TokenHeader { alg?: unknown, kid?: unknown }

/**
 * Built once at start, so fast-jwt's cache of verified tokens works: HS256
 * with the secret, RS256 with the PEM, or the pinned algorithms with the
 * key of the set that the token's kid names. Header members that point at
 * other keys (jku, x5u, jwk, x5c) are never read.
 */
export function createTokenVerifier (jwt: JwtConfig, keys: RemoteKeys | null): TokenVerifier {
  const common = {
    ...(jwt.issuer === null ? {} : { allowedIss: jwt.issuer }),
    ...(jwt.audience === null ? {} : { allowedAud: jwt.audience }),
    // fast-jwt checks iss and aud only when present; a token leaving them
    // out (one minted for another service on the same key) must not pass.
    requiredClaims: [...(jwt.issuer === null ? [] : ['iss']), ...(jwt.audience === null ? [] : ['aud'])],
    cache: VERIFIED_TOKENS_CACHED
  }
  if (jwt.jwks !== null) {
    if (keys === null) throw new Error('a key set (JWT_JWKS_URL) needs its RemoteKeys')
    return keySetVerifier(common, keys)
  }
  // Pinned: a token may not pick its own algorithm (alg: none, HS/RS confusion).
  const verify = jwt.publicKey !== null
    ? createVerifier({ ...common, algorithms: ['RS256'], key: jwt.publicKey })
    : createVerifier({ ...common, algorithms: ['HS256'], key: jwt.secret ?? '' })
  return Object.assign(verify, { forget: () => {}, cachedTokens: () => cacheSize(verify) })
}

/**
 * One fast-jwt verifier per key of the set, made when the key is first
 * used: the PEM is parsed once rather than per token, the common case (a
 * known kid in a fresh set) stays synchronous, and each verifier is pinned
 * to its key's algorithm. A key that changes or goes takes its verified
 * tokens with it.
 */
function keySetVerifier (common: Record<string, unknown>, keys: RemoteKeys): TokenVerifier {
  const decode = createDecoder({ complete: true })
  const headers = new Map<string, TokenHeader>()
  const byKey = new Map<string, { pem: string, verify: Verify }>()

  const headerOf = (token: string): TokenHeader => {
    const segment = token.slice(0, Math.max(0, token.indexOf('.')))
    let header = headers.get(segment)
    if (header === undefined) {
      // fast-jwt's decoder, so a malformed token fails as it always has.
      header = (decode(token) as { header: TokenHeader }).header
      if (headers.size >= HEADERS_CACHED) headers.clear()
      headers.set(segment, header)
    }
    return header
  }
  const verifierFor = (header: TokenHeader, pem: string): Verify => {
    const id = `${String(header.alg)} ${String(header.kid)}`
    let entry = byKey.get(id)
    if (entry?.pem !== pem) {
      entry = { pem, verify: createVerifier({ ...common, algorithms: [header.alg as 'RS256' | 'ES256'], key: pem }) }
      byKey.set(id, entry)
    }
    return entry.verify
  }

  const verify = (token: string): unknown => {
    const header = headerOf(token)
    // An expired set goes through keyFor, which refreshes it first: a key
    // removed since is refused there, whatever its verifier remembers.
    const pem = keys.isFresh() ? keys.cachedKey(header) : undefined
    if (pem !== undefined) return verifierFor(header, pem)(token)
    return keys.keyFor(header).then((key) => verifierFor(header, key)(token))
  }
  const forget = (kids: readonly string[]): void => {
    for (const [id] of byKey) if (kids.includes(id.slice(id.indexOf(' ') + 1))) byKey.delete(id)
  }
  const cachedTokens = (): number => [...byKey.values()].reduce((sum, entry) => sum + cacheSize(entry.verify), 0)
  return Object.assign(verify, { forget, cachedTokens })
}

function cacheSize (verify: Verify): number {
  return (verify as { cache?: { size: number } }).cache?.size ?? 0
}
