import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { CatalogUnavailable, PublishedWeekNotFound } from '../errors.js'
import type { PublicCopies } from './public-menus.js'

/** What the public page sends for one week: the body, already serialized, and its ETag. */
export interface PublicAnswer {
  payload: string
  etag: string
}

/** The school's copies may be behind: to be refused rather than served. Never cached. */
export class StaleCopies extends Error {}

export interface PublicCache {
  /** A school's published week; throws PublishedWeekNotFound, StaleCopies or CatalogUnavailable. */
  get: (schoolId: number, weekOf: string) => Promise<PublicAnswer>
  /** After a staff write of that week, in this process. */
  forgetWeek: (schoolId: number, weekOf: string) => void
  /** After a repair of the school. */
  forgetSchool: (schoolId: number) => void
  stats: () => { hits: number, misses: number, entries: number }
}

export interface PublicCacheOptions {
  copies: PublicCopies
  /** How long answers are kept: the max-age the public page declares. */
  ttlMs: number
  /** Weeks this many years either side of today are indexed. */
  windowYears: number
  staleAfterMs: number
  catalogTimeoutMs: number
}

type Answer = PublicAnswer | { missing: true }

// Many menus are a few hundred bytes; the byte bound keeps long ones in check.
const MAX_ENTRIES = 50_000
const MAX_BYTES = 64 * 1024 * 1024

/**
 * Public answers of this process, 200s and 404s, for the max-age they
 * declare. Keyed by school id, not slug: a slug given to another school must
 * not inherit the old one's answers. Per school it also keeps the Mondays
 * the school publishes (one query, with the stale check), so a read of any
 * other week, which is what a scan asks for, is a 404 without a query.
 * Concurrent misses of one key share one query.
 */
export function createPublicCache (options: PublicCacheOptions): PublicCache {
  const { copies, catalogTimeoutMs } = options
  let hits = 0
  let misses = 0

  const published = new LRUCache<number, Set<string>>({
    max: MAX_ENTRIES,
    ttl: options.ttlMs,
    fetchMethod: async (schoolId) => {
      const index = await fromCatalog(async () => await copies.publishedWeeks(schoolId, options.windowYears, options.staleAfterMs, catalogTimeoutMs))
      if (index.stale) throw new StaleCopies()
      return new Set(index.weeks)
    }
  })
  const answers = new LRUCache<string, Answer>({
    max: MAX_ENTRIES,
    maxSize: MAX_BYTES,
    sizeCalculation: (answer) => 'payload' in answer ? answer.payload.length + 100 : 100,
    ttl: options.ttlMs,
    fetchMethod: async (key) => {
      const [id, weekOf] = key.split('/') as [string, string]
      const week = await fromCatalog(async () => await copies.week(Number(id), weekOf, catalogTimeoutMs))
      if (week === null) return { missing: true }
      const payload = JSON.stringify(week)
      return { payload, etag: `"${createHash('sha1').update(payload).digest('base64')}"` }
    }
  })
  const keyOf = (schoolId: number, weekOf: string): string => `${schoolId}/${weekOf}`

  return {
    async get (schoolId, weekOf) {
      let missed = false
      const miss = (): void => { missed = true }
      try {
        const weeks = await cached(published, schoolId, miss)
        const found = weeks.has(weekOf) ? await cached(answers, keyOf(schoolId, weekOf), miss) : null
        if (found === null || 'missing' in found) throw new PublishedWeekNotFound()
        return found
      } finally {
        if (missed) misses++
        else hits++
      }
    },
    forgetWeek (schoolId, weekOf) {
      published.delete(schoolId)
      answers.delete(keyOf(schoolId, weekOf))
    },
    forgetSchool (schoolId) {
      published.delete(schoolId)
      const prefix = `${schoolId}/`
      for (const key of [...answers.keys()]) if (key.startsWith(prefix)) answers.delete(key)
    },
    stats: () => ({ hits, misses, entries: published.size + answers.size })
  }
}

// Reads of one key started again because staff writes kept forgetting it.
const FORGOTTEN_READS_MAX = 5

/** A cached value, or one fetched once for all concurrent callers; `miss` learns of a fetch. */
async function cached<K extends {}, V extends {}> (cache: LRUCache<K, V>, key: K, miss: () => void): Promise<V> {
  const hit = cache.get(key)
  if (hit !== undefined) return hit
  miss()
  for (let read = 1; ; read++) {
    try {
      return await cache.fetch(key) as V
    } catch (error) {
      // A staff write forgot this key while it was being read: the answer in
      // flight may predate the write, so read it again, and again for each
      // write that comes during the next read. A week rewritten faster than
      // it can be read is a 503 to retry, never a 500.
      if ((error as Error).message !== 'deleted') throw error
      if (read === FORGOTTEN_READS_MAX) throw new CatalogUnavailable()
    }
  }
}

async function fromCatalog<T> (read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch {
    throw new CatalogUnavailable()
  }
}
