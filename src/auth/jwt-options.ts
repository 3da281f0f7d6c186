import type { FastifyJWTOptions, TokenOrHeader } from '@fastify/jwt'
import type { Algorithm } from 'fast-jwt'
import type { FastifyRequest } from 'fastify'
import type { JwtConfig } from '../config.js'

/** Verified tokens remembered per key (bounded, never past their exp). */
export const VERIFIED_TOKENS_CACHED = 10_000

/** A token's protected header, as decoded. */
export interface TokenHeader { alg?: unknown, kid?: unknown }

export type KeyCallback = (error: Error | null, key?: string) => void

/** A key set's key for a token decoded in full, answered through the callback. */
export type KeySetSecret = (request: FastifyRequest, decoded: TokenOrHeader, callback: KeyCallback) => void

/** What this service gives @fastify/jwt: where the token is, and the key set's keys if there is one. */
export interface JwtHooks {
  keySetSecret: KeySetSecret | null
  extractToken: (request: FastifyRequest) => string
}

/**
 * Everything a verifier checks besides the key: the algorithms are pinned
 * (a token may not pick its own: alg none, HS/RS confusion), and issuer
 * and audience are enforced when configured. fast-jwt checks iss and aud
 * only when present, so they are also required: a token leaving them out
 * (one minted for another service on the same key) must not pass.
 */
export function verifyPins (jwt: JwtConfig, algorithms: Algorithm[] = allowedAlgorithms(jwt)): {
  algorithms: Algorithm[], allowedIss?: string, allowedAud?: string, requiredClaims: string[], cache: number
} {
  return {
    algorithms,
    ...(jwt.issuer === null ? {} : { allowedIss: jwt.issuer }),
    ...(jwt.audience === null ? {} : { allowedAud: jwt.audience }),
    requiredClaims: [...(jwt.issuer === null ? [] : ['iss']), ...(jwt.audience === null ? [] : ['aud'])],
    cache: VERIFIED_TOKENS_CACHED
  }
}

function allowedAlgorithms (jwt: JwtConfig): Algorithm[] {
  if (jwt.jwks !== null) return [...jwt.jwks.algorithms]
  return jwt.publicKey !== null ? ['RS256'] : ['HS256']
}

/** How this service's own tokens are signed (development and tests): HS256, the configured issuer and audience. */
export function signOptions ({ issuer, audience }: Pick<JwtConfig, 'issuer' | 'audience'>): { algorithm: 'HS256', iss?: string, aud?: string } {
  return { algorithm: 'HS256', ...(issuer === null ? {} : { iss: issuer }), ...(audience === null ? {} : { aud: audience }) }
}

/**
 * @fastify/jwt's options. A secret or a PEM is given as it is, so that
 * app.jwt.verify works as well as request.jwtVerify; a key set is a
 * function (which @fastify/jwt calls from request.jwtVerify only), and
 * needs the token's header (alg, kid), hence decoding in full. A secret
 * signs as well (app.jwt.sign); a PEM or a key set only verifies.
 */
export function jwtPluginOptions (jwt: JwtConfig, { keySetSecret, extractToken }: JwtHooks): FastifyJWTOptions {
  return {
    secret: keySetSecret !== null ? { public: keySetSecret } : jwt.publicKey !== null ? { public: jwt.publicKey } : jwt.secret ?? '',
    decode: { complete: true },
    verify: { ...verifyPins(jwt), extractToken },
    ...(jwt.secret === null ? {} : { sign: signOptions(jwt) })
  }
}
