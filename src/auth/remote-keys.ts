import type { FastifyBaseLogger } from 'fastify'
import type { JwksConfig } from '../config.js'
import { AuthKeysUnavailable, TokenInvalid } from '../errors.js'
import { fetchKeySet, KeySetError, usableKeys, type KeyTable } from './key-set.js'

export interface RemoteKeysOptions extends JwksConfig {
  log: FastifyBaseLogger
  /** Told the kids a refreshed set no longer holds, so tokens they verified can be forgotten. */
  onKeysRemoved?: (kids: string[]) => void
  /** The clock of the cooldown and the cache age; tests pass their own. */
  now?: () => number
}

export interface RemoteKeysStats {
  /** Fetches started since start. */
  fetches: number
  failures: number
  /** Calls to keyFor: tokens whose key was not at hand (unknown kid, expired set). */
  lookups: number
  /** Usable keys in the cached set. */
  keys: number
}

export interface RemoteKeys {
  /**
   * The PEM of the key a token header names. Throws TokenInvalid for a kid
   * the set does not hold, and AuthKeysUnavailable (with retryAfterSeconds)
   * when the set could not be fetched: never a refusal for a key not seen.
   */
  keyFor: (header: { alg?: unknown, kid?: unknown }) => Promise<string>
  /** The cached key for this header, if any, fresh or not; fetches nothing. */
  cachedKey: (header: { alg?: unknown, kid?: unknown }) => string | undefined
  /** Fetches when the cooldown allows it, else waits for a fetch under way; never throws. */
  refresh: () => Promise<void>
  /** False once the cached set is older than its max age (or there is none). */
  isFresh: () => boolean
  stats: () => RemoteKeysStats
  /** Aborts a fetch under way. */
  close: () => void
}

const MAX_KID_LENGTH = 256

/**
 * The key set behind JWT_JWKS_URL, cached. One rule bounds the traffic to it:
 * a fetch starts at most once per cooldown, whether it was asked for by the
 * cache's age, by an unknown kid or by the start; concurrent askers share the
 * fetch under way. A failed fetch keeps the keys already cached.
 */
export function createRemoteKeys (options: RemoteKeysOptions): RemoteKeys {
  const keys = new RemoteKeySet(options)
  return {
    keyFor: async (header) => await keys.keyFor(header),
    cachedKey: (header) => keys.cachedKey(header),
    refresh: async () => { await keys.refresh() },
    isFresh: () => keys.isFresh(),
    stats: () => keys.stats(),
    close: () => { keys.close() }
  }
}

class RemoteKeySet {
  private readonly now: () => number
  private readonly closing = new AbortController()
  private table: KeyTable | null = null
  private loadedAt = 0
  private attemptedAt: number | null = null
  private lastFailed = false
  private pending: Promise<void> | null = null
  private readonly counts = { fetches: 0, failures: 0, lookups: 0 }

  constructor (private readonly options: RemoteKeysOptions) {
    this.now = options.now ?? Date.now
  }

  isFresh (): boolean {
    return this.table !== null && this.now() - this.loadedAt < this.options.cacheMaxAgeMs
  }

  stats (): RemoteKeysStats {
    return { ...this.counts, keys: this.table?.kids.size ?? 0 }
  }

  close (): void {
    this.closing.abort()
  }

  cachedKey ({ alg, kid }: { alg?: unknown, kid?: unknown }): string | undefined {
    return typeof alg === 'string' && typeof kid === 'string' ? this.table?.get(alg, kid) : undefined
  }

  async refresh (): Promise<void> {
    if (this.pending === null && this._mayFetch() && !this.closing.signal.aborted) {
      this.attemptedAt = this.now()
      this.pending = this._load().finally(() => { this.pending = null })
    }
    if (this.pending !== null) await this.pending
  }

  async keyFor (header: { alg?: unknown, kid?: unknown }): Promise<string> {
    this.counts.lookups++
    const { alg, kid } = header
    // Checked before any fetch: a token cannot make us fetch for an algorithm
    // we would refuse anyway (HS256 signed with a public key, alg none).
    if (typeof alg !== 'string' || !(this.options.algorithms as string[]).includes(alg)) throw new TokenInvalid('algorithm not allowed')
    if (typeof kid !== 'string' || kid === '' || kid.length > MAX_KID_LENGTH) throw new TokenInvalid('the token names no key (kid)')

    if (!this.isFresh()) await this.refresh()
    const cached = this.table?.get(alg, kid)
    if (cached !== undefined) return cached
    // An unknown kid may be a key added since the last fetch: one refetch,
    // under the same cooldown as every other.
    await this.refresh()
    const fetched = this.table?.get(alg, kid)
    if (fetched !== undefined) return fetched
    if (this.table === null || this.lastFailed) throw this._unavailable()
    throw new TokenInvalid(`the issuer's key set holds no ${alg} key with this kid`)
  }

  private _mayFetch (): boolean {
    return this.attemptedAt === null || this.now() - this.attemptedAt >= this.options.cooldownMs
  }

  private async _load (): Promise<void> {
    const { options } = this
    this.counts.fetches++
    const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs), this.closing.signal])
    try {
      const next = await usableKeys(await fetchKeySet(options.url, signal), options.algorithms)
      if (next.kids.size === 0) throw new KeySetError(`holds no key usable with ${options.algorithms.join(', ')}${describeRefused(next)}`)
      if (next.refused.length > 0) options.log.warn({ jwks: options.url, refused: next.refused }, 'key set: some keys are not used')
      this._replace(next)
    } catch (error) {
      this.counts.failures++
      this.lastFailed = true
      // Only our own messages reach the log: they name the URL, never a token.
      const reason = error instanceof KeySetError ? error.message : 'could not be read'
      const kept = this.table === null ? '' : '; the keys already cached stay in use'
      options.log.error({ jwks: options.url, cached: this.table?.kids.size ?? 0 }, `key set: fetch failed, ${reason}${kept}`)
    }
  }

  private _replace (next: KeyTable): void {
    const removed = this.table === null ? [] : [...this.table.kids].filter((kid) => !next.kids.has(kid))
    this.table = next
    this.loadedAt = this.now()
    this.lastFailed = false
    this.options.log.info({ jwks: this.options.url, kids: [...next.kids], removed }, 'key set: fetched')
    if (removed.length > 0) this.options.onKeysRemoved?.(removed)
  }

  private _unavailable (): Error {
    const waitMs = this.attemptedAt === null ? 0 : this.attemptedAt + this.options.cooldownMs - this.now()
    return Object.assign(new AuthKeysUnavailable(), { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) })
  }
}

function describeRefused (table: KeyTable): string {
  return table.refused.length === 0 ? '' : ` (refused: ${table.refused.join('; ')})`
}
