import type { KeyCallback, TokenHeader } from './jwt-options.js'
import type { RemoteKeys } from './remote-keys.js'
import type { KeyVerifiers } from './verifier.js'

/** A token as @fastify/jwt decodes it in full: the signed input and the signature apart. */
export interface DecodedToken { header: TokenHeader, input: string, signature: string }

/** Answers the key of the set that checks a token: the body of @fastify/jwt's `secret`. */
export type KeyLookup = (token: DecodedToken, callback: KeyCallback) => void

/**
 * The token's kid picks the key of the set: at hand while the set is
 * fresh, else through keyFor, which fetches the set when the cooldown
 * allows and refuses what it cannot find. Header members that point at
 * other keys (jku, x5u, jwk, x5c) are never read.
 */
export function createKeyLookup (keys: RemoteKeys, verifiers: KeyVerifiers): KeyLookup {
  return (token, callback) => {
    // An expired set goes through keyFor, which refreshes it first: a key
    // removed since is refused there, whatever a verifier remembers.
    const pem = keys.isFresh() ? keys.cachedKey(token.header) : undefined
    if (pem !== undefined) {
      handOver(verifiers, token, pem, callback)
      return
    }
    keys.keyFor(token.header).then((key) => { handOver(verifiers, token, key, callback) }, (error: unknown) => { callback(error as Error) })
  }
}

/**
 * The key's own verifier checks the token before @fastify/jwt gets the
 * key, so that what was verified with a key goes when the key goes.
 */
function handOver (verifiers: KeyVerifiers, token: DecodedToken, pem: string, callback: KeyCallback): void {
  try {
    verifiers.check(`${token.input}.${token.signature}`, token.header, pem)
  } catch (error) {
    callback(error as Error)
    return
  }
  callback(null, pem)
}
