import fastifyJwt from '@fastify/jwt'
import Fastify from 'fastify'
import { signOptions } from '../auth/jwt-options.js'

export interface DevSignerOptions {
  /** The HS256 key: JWT_SECRET, or a secret of the caller's own. */
  secret: string
  expiresInMs: number
  issuer?: string | null
  audience?: string | null
}

/**
 * Signs development and test tokens the way the API verifies them (HS256,
 * with the configured issuer and audience), through @fastify/jwt's
 * app.jwt.sign with the sign options the API registers it with. Production
 * tokens come from an identity provider, never from here.
 */
export async function createDevSigner ({ secret, expiresInMs, issuer = null, audience = null }: DevSignerOptions): Promise<(claims: Record<string, unknown>) => string> {
  const signer = Fastify({ logger: false })
  // @fastify/jwt reads a number as seconds.
  await signer.register(fastifyJwt, { secret, sign: { ...signOptions({ issuer, audience }), expiresIn: expiresInMs / 1000 } })
  await signer.ready()
  return (claims) => signer.jwt.sign(claims)
}
