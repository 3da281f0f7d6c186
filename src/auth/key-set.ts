import { KeyObject, type webcrypto } from 'node:crypto'
import { createLocalJWKSet, errors, type JSONWebKeySet } from 'jose'
import type { JwksAlgorithm } from '../config.js'

// A real key set is a few kilobytes; a larger answer is not one.
const MAX_BODY_BYTES = 256 * 1024
const MIN_RSA_BITS = 2048

/** Why a fetch brought no usable key set; the message is for the log. */
export class KeySetError extends Error {
  override name = 'KeySetError'
}

/** The usable keys of one set, as PEM, by algorithm and kid. */
export interface KeyTable {
  get: (algorithm: string, kid: string) => string | undefined
  kids: ReadonlySet<string>
  /** Members that were left out, and why (weak, ambiguous, not a public key). */
  refused: string[]
}

/**
 * Fetches the set once from the configured URL. Redirects are not followed,
 * so keys come from that URL only, and a slow answer ends at `signal`.
 */
export async function fetchKeySet (url: string, signal: AbortSignal): Promise<unknown> {
  let response: Response
  try {
    response = await fetch(url, { signal, redirect: 'error', headers: { accept: 'application/jwk-set+json, application/json' } })
  } catch (error) {
    throw new KeySetError(signal.aborted ? 'no answer before the timeout' : `could not connect (${causeOf(error)})`)
  }
  if (response.status !== 200) {
    await response.body?.cancel()
    throw new KeySetError(`answered HTTP ${response.status}`)
  }
  const text = await readText(response, signal)
  try {
    return JSON.parse(text)
  } catch {
    throw new KeySetError('answered something that is not JSON')
  }
}

async function readText (response: Response, signal: AbortSignal): Promise<string> {
  if (Number(response.headers.get('content-length')) > MAX_BODY_BYTES) {
    await response.body?.cancel()
    throw new KeySetError(`answered more than ${MAX_BODY_BYTES} bytes`)
  }
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of response.body ?? []) {
      size += chunk.byteLength
      if (size > MAX_BODY_BYTES) throw new KeySetError(`answered more than ${MAX_BODY_BYTES} bytes`)
      chunks.push(Buffer.from(chunk))
    }
  } catch (error) {
    if (error instanceof KeySetError) throw error
    throw new KeySetError(signal.aborted ? 'did not finish its answer before the timeout' : `broke off its answer (${causeOf(error)})`)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Picks the members usable with the allowed algorithms. jose matches each
 * kid and algorithm to the member's kty, crv, use and key_ops, and imports
 * it; we add what fast-jwt needs (PEM) and what we refuse (RSA under 2048
 * bits, a kid shared by two members).
 */
export async function usableKeys (set: unknown, algorithms: readonly JwksAlgorithm[]): Promise<KeyTable> {
  let select: ReturnType<typeof createLocalJWKSet>
  try {
    select = createLocalJWKSet(set as JSONWebKeySet)
  } catch {
    throw new KeySetError('answered JSON that is not a key set ({"keys": [...]})')
  }
  const members = (set as { keys: Array<{ kid?: unknown }> }).keys
  const kids = new Set(members.map((member) => member.kid).filter((kid): kid is string => typeof kid === 'string' && kid !== ''))
  const pems = new Map<string, string>()
  const refused: string[] = []
  for (const kid of kids) {
    for (const algorithm of algorithms) {
      try {
        const key = KeyObject.from(await select({ alg: algorithm, kid }) as webcrypto.CryptoKey)
        const bits = key.asymmetricKeyDetails?.modulusLength
        if (key.asymmetricKeyType === 'rsa' && (bits === undefined || bits < MIN_RSA_BITS)) {
          refused.push(`${kid}: RSA key of ${bits ?? '?'} bits (at least ${MIN_RSA_BITS} are required)`)
          continue
        }
        pems.set(tableKey(algorithm, kid), key.export({ type: 'spki', format: 'pem' }).toString())
      } catch (error) {
        if (error instanceof errors.JWKSNoMatchingKey) continue
        refused.push(`${kid}: ${error instanceof errors.JWKSMultipleMatchingKeys ? 'two members share this kid' : (error as Error).message}`)
      }
    }
  }
  const usable = new Set([...pems.keys()].map((key) => key.slice(key.indexOf(' ') + 1)))
  return { get: (algorithm, kid) => pems.get(tableKey(algorithm, kid)), kids: usable, refused }
}

function tableKey (algorithm: string, kid: string): string {
  return `${algorithm} ${kid}`
}

function causeOf (error: unknown): string {
  const cause = (error as { cause?: { code?: string, message?: string } }).cause
  return cause?.code ?? cause?.message ?? (error as Error).message
}
