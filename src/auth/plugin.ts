import fastifyJwt from '@fastify/jwt'
import { createDecoder } from 'fast-jwt'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { JwtConfig } from '../config.js'
import { authorizationValues, bearerToken } from './bearer.js'
import { jwtPluginOptions, type KeySetSecret } from './jwt-options.js'
import { createRemoteKeys, type RemoteKeys } from './remote-keys.js'
import { tokenError } from './token-errors.js'
import { createKeyLookup, type DecodedToken } from './token-keys.js'
import { createKeyVerifiers, type KeyVerifiers } from './verifier.js'

/** A verified token's payload. */
export type Claims = Record<string, unknown>

declare module 'fastify' {
  interface FastifyInstance {
    tokens: Tokens
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Claims
    user: Claims
  }
}

export interface Tokens {
  /** request.jwtVerify(), refusals turned into this service's codes; resolves to request.user. */
  verifyRequest: (request: FastifyRequest) => Promise<Claims>
  /** The key set's own verifiers, beside @fastify/jwt's; none with a secret or a PEM. */
  verify: KeyVerifiers
  /** The key set behind JWT_JWKS_URL, or null with a secret or a PEM. */
  keys: RemoteKeys | null
}

export interface AuthOptions {
  jwt: JwtConfig
  /** The key set's clock (cooldown, cache age); tests pass their own. */
  clock?: () => number
}

/**
 * Token verification through @fastify/jwt: request.jwtVerify() reads the
 * bearer token, decodes it, gets its key and verifies it (request.user,
 * app.jwt). With a key set, its first fetch starts when the app is ready
 * and is not awaited: a key set that cannot be reached is logged and
 * fetched again on demand, and does not keep the service from starting.
 */
export default fp<AuthOptions>(async (app, { jwt, clock }) => {
  const verify = createKeyVerifiers(jwt)
  const keys = jwt.jwks === null
    ? null
    : createRemoteKeys({
      ...jwt.jwks,
      log: app.log,
      // What our verifiers hold of a key since removed goes with it.
      onKeysRemoved: (kids) => { verify.forget(kids) },
      ...(clock === undefined ? {} : { now: clock })
    })
  await app.register(fastifyJwt, jwtPluginOptions(jwt, { keySetSecret: keys === null ? null : keySetSecret(keys, verify), extractToken }))

  const verifyRequest = async (request: FastifyRequest): Promise<Claims> => {
    try {
      return await request.jwtVerify<Claims>()
    } catch (error) {
      throw tokenError(error, () => decodes(extractToken(request)))
    }
  }
  app.decorate('tokens', { verifyRequest, verify, keys })

  if (keys !== null) {
    app.addHook('onReady', async () => { void keys.refresh() })
    app.addHook('onClose', async () => { keys.close() })
  }
}, { name: 'auth' })

function keySetSecret (keys: RemoteKeys, verify: KeyVerifiers): KeySetSecret {
  const keyFor = createKeyLookup(keys, verify)
  // decode: { complete: true } (jwt-options.ts) makes it the whole token.
  return (_request, decoded, callback) => { keyFor(decoded as unknown as DecodedToken, callback) }
}

function extractToken (request: FastifyRequest): string {
  return bearerToken(authorizationValues(request.raw.rawHeaders))
}

const decode = createDecoder()

function decodes (token: string): boolean {
  try {
    decode(token)
    return true
  } catch {
    return false
  }
}
