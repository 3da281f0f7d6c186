import { TokenMalformed, TokenMissing } from '../errors.js'

/** Tokens longer than this are refused before any parsing. */
export const MAX_TOKEN_LENGTH = 8 * 1024

/** Every Authorization value the client sent: Node keeps only the first in `headers`. */
export function authorizationValues (rawHeaders: string[]): string[] {
  const values: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === 'authorization') values.push(rawHeaders[i + 1] ?? '')
  }
  return values
}

/**
 * The token from `Authorization: Bearer <token>`. Sent twice is refused: a
 * proxy that reads the other one would see another identity than we do.
 */
export function bearerToken (values: string[]): string {
  if (values.length > 1) throw new TokenMalformed('send one Authorization header')
  const header = values[0]
  if (header === undefined || header === '') throw new TokenMissing()
  const match = /^Bearer ([^\s]+)$/i.exec(header.trim())
  if (match?.[1] === undefined) throw new TokenMalformed('expected "Bearer <token>"')
  if (match[1].length > MAX_TOKEN_LENGTH) throw new TokenMalformed(`longer than ${MAX_TOKEN_LENGTH} characters`)
  return match[1]
}
