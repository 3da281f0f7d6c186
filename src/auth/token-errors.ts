import {
  AuthKeysUnavailable, TokenExpired, TokenInvalid, TokenMalformed, TokenMissing, TokenNotYetValid
} from '../errors.js'

/**
 * This service's error for a token that @fastify/jwt or fast-jwt refused.
 * Ours (the Authorization header, the key set) pass as they are.
 * @fastify/jwt reports a token it cannot decode and a bad signature under
 * one code (FST_JWT_AUTHORIZATION_TOKEN_INVALID): `decodes` tells which,
 * asked only then, so that accepted tokens are not decoded twice.
 */
export function tokenError (error: unknown, decodes: () => boolean): Error {
  if (isOurs(error)) return error
  switch ((error as { code?: unknown }).code) {
    case 'FST_JWT_AUTHORIZATION_TOKEN_INVALID':
      return decodes() ? new TokenInvalid('bad signature, or an issuer or audience that does not match') : new TokenMalformed('it could not be decoded')
    case 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED':
    case 'FAST_JWT_EXPIRED': return new TokenExpired()
    case 'FAST_JWT_INACTIVE': return new TokenNotYetValid()
    case 'FAST_JWT_MALFORMED':
    case 'FAST_JWT_INVALID_TYPE':
    case 'FAST_JWT_INVALID_PAYLOAD':
      return new TokenMalformed('it could not be decoded')
    case 'FAST_JWT_INVALID_ALGORITHM': return new TokenInvalid('algorithm not allowed')
    case 'FAST_JWT_MISSING_SIGNATURE': return new TokenInvalid('unsigned tokens are not accepted')
    case 'FAST_JWT_INVALID_SIGNATURE': return new TokenInvalid('bad signature')
    case 'FAST_JWT_INVALID_CLAIM_VALUE':
    case 'FAST_JWT_INVALID_CLAIM_TYPE':
    case 'FAST_JWT_MISSING_REQUIRED_CLAIM':
      return new TokenInvalid('issuer, audience or another registered claim does not match')
    default: return new TokenInvalid('it could not be verified')
  }
}

function isOurs (error: unknown): error is Error {
  return error instanceof TokenMissing || error instanceof TokenMalformed || error instanceof TokenInvalid || error instanceof AuthKeysUnavailable
}
