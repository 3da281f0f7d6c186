import { createVerifier } from 'fast-jwt'
import type { JwtConfig } from '../config.js'
import { verifyPins, type TokenHeader } from './jwt-options.js'

/**
 * One fast-jwt verifier per key of a key set, each with its cache of
 * verified tokens, kept beside @fastify/jwt's own (docs/auth.md, "A
 * verifier per key, beside the plugin", says why): these are dropped with
 * their key and counted.
 */
export interface KeyVerifiers {
  /** Verifies with the verifier of this key, made on first use; throws fast-jwt's errors. */
  check: (token: string, header: TokenHeader, pem: string) => void
  /** Drops what was verified with these kids (keys removed from the set). */
  forget: (kids: readonly string[]) => void
  /** Tokens held in the caches of verified tokens. */
  cachedTokens: () => number
}

type Verify = (token: string) => unknown

/**
 * Each verifier is made when its key is first used, so the PEM is parsed
 * once rather than per token, and is pinned to its key's algorithm. A key
 * that changes or goes takes its verified tokens with it.
 */
export function createKeyVerifiers (jwt: JwtConfig): KeyVerifiers {
  const byKey = new Map<string, { pem: string, verify: Verify }>()
  const verifierFor = (header: TokenHeader, pem: string): Verify => {
    const id = `${String(header.alg)} ${String(header.kid)}`
    let entry = byKey.get(id)
    if (entry?.pem !== pem) {
      entry = { pem, verify: createVerifier({ ...verifyPins(jwt, [header.alg as 'RS256' | 'ES256']), key: pem }) }
      byKey.set(id, entry)
    }
    return entry.verify
  }
  return {
    check: (token, header, pem) => { verifierFor(header, pem)(token) },
    forget: (kids) => {
      for (const [id] of byKey) if (kids.includes(id.slice(id.indexOf(' ') + 1))) byKey.delete(id)
    },
    cachedTokens: () => [...byKey.values()].reduce((sum, entry) => sum + cacheSize(entry.verify), 0)
  }
}

function cacheSize (verify: Verify): number {
  return (verify as { cache?: { size: number } }).cache?.size ?? 0
}
