import { createSigner } from 'fast-jwt'

export interface DevSignerOptions {
  /** The HS256 key: JWT_SECRET, or a secret of the caller's own. */
  secret: string
  expiresInMs: number
  issuer?: string | null
  audience?: string | null
}

/**
 * Signs development and test tokens the way the API verifies them (HS256,
 * with the configured issuer and audience). Production tokens come from an
 * identity provider, never from here.
 */
export function createDevSigner ({ secret, expiresInMs, issuer = null, audience = null }: DevSignerOptions): (claims: Record<string, unknown>) => string {
  const sign = createSigner({
    key: secret,
    algorithm: 'HS256',
    expiresIn: expiresInMs,
    ...(issuer === null ? {} : { iss: issuer }),
    ...(audience === null ? {} : { aud: audience })
  })
  return (claims) => sign(claims)
}
