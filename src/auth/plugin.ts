import fp from 'fastify-plugin'
import type { JwtConfig } from '../config.js'
import { createRemoteKeys, type RemoteKeys } from './remote-keys.js'
import { createTokenVerifier, type TokenVerifier } from './verifier.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: Tokens
  }
}

export interface Tokens {
  /** The process's one token verifier (see createTokenVerifier). */
  verify: TokenVerifier
  /** The key set behind JWT_JWKS_URL, or null with a secret or a PEM. */
  keys: RemoteKeys | null
}

export interface AuthOptions {
  jwt: JwtConfig
  /** The key set's clock (cooldown, cache age); tests pass their own. */
  clock?: () => number
}

/**
 * Token verification. With a key set, its first fetch starts when the app is
 * ready and is not awaited: a key set that cannot be reached is logged and
 * fetched again on demand, and does not keep the service from starting.
 */
export default fp<AuthOptions>(async (app, { jwt, clock }) => {
  let verify: TokenVerifier | null = null
  const keys = jwt.jwks === null
    ? null
    : createRemoteKeys({
      ...jwt.jwks,
      log: app.log,
      // A token verified with a key since removed must not be served from memory.
      onKeysRemoved: (kids) => verify?.forget(kids),
      ...(clock === undefined ? {} : { now: clock })
    })
  verify = createTokenVerifier(jwt, keys)
  app.decorate('tokens', { verify, keys })

  if (keys !== null) {
    app.addHook('onReady', async () => { void keys.refresh() })
    app.addHook('onClose', async () => { keys.close() })
  }
}, { name: 'auth' })
