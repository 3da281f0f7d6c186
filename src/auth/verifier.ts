import { createVerifier, type DecodedJwt } from 'fast-jwt'
import type { JwtConfig } from '../config.js'
import type { RemoteKeys } from './remote-keys.js'

/** Verifies a token and returns its payload; a promise when keys come from a key set. */
export interface TokenVerifier {
  (token: string): unknown
  /** Forgets every verified token, so the next use of each is checked again. */
  forget: () => void
}

// Verified tokens remembered (bounded, never past their exp).
const VERIFIED_TOKENS_CACHED = 10_000

/**
 * One verifier for the process, built at start so fast-jwt's cache of
 * verified tokens works: HS256 with the secret, RS256 with the PEM, or the
 * pinned algorithms with the key set's key that the token's kid names.
 * Header members that point at other keys (jku, x5u, jwk, x5c) are never read.
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
  // Algorithms are pinned: a token may not pick its own (alg: none, HS/RS confusion).
  let fastJwt: (token: string) => unknown
  if (jwt.jwks !== null) {
    if (keys === null) throw new Error('a key set (JWT_JWKS_URL) needs its RemoteKeys')
    fastJwt = createVerifier({ ...common, algorithms: jwt.jwks.algorithms, key: async ({ header }: DecodedJwt) => await keys.keyFor(header) })
  } else if (jwt.publicKey !== null) {
    fastJwt = createVerifier({ ...common, algorithms: ['RS256'], key: jwt.publicKey })
  } else {
    fastJwt = createVerifier({ ...common, algorithms: ['HS256'], key: jwt.secret ?? '' })
  }
  const cache = (fastJwt as { cache?: { clear: () => void } }).cache
  // A token verified earlier skips the key lookup (fast-jwt's cache), so an
  // expired set is refreshed here first: a removal it brings clears that cache.
  const verify = jwt.jwks === null || keys === null
    ? fastJwt
    : (token: string) => keys.isFresh() ? fastJwt(token) : keys.refresh().then(() => fastJwt(token))
  return Object.assign(verify, { forget: () => cache?.clear() })
}
