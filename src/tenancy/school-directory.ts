import type { Knex } from 'knex'
import { LRUCache } from 'lru-cache'
import { schoolsRepository, type School } from '../catalog/schools.js'
import { CatalogUnavailable } from '../errors.js'

export interface SchoolDirectory {
  /** The school with this slug, or null when the catalog has none. */
  resolve: (slug: string) => Promise<School | null>
  /** Forgets a cached entry, so the next lookup asks the catalog. */
  invalidate: (slug: string) => void
  /** Forgets every entry. */
  clear: () => void
  stats: () => { hits: number, misses: number, entries: number }
}

export interface SchoolDirectoryOptions {
  catalog: Knex
  ttlMs: number
  /** How long "no such school" is remembered; short, so onboarding shows soon. */
  unknownTtlMs?: number
  maxEntries?: number
  /** A catalog lookup slower than this counts as the catalog being down. */
  queryTimeoutMs?: number
}

interface Entry { school: School | null }

/**
 * Catalog lookups behind a TTL cache. lru-cache's fetch() merges concurrent
 * misses for one slug into a single query. Unknown slugs are cached too, for
 * a shorter time, so forged school claims cannot hammer the catalog. A failed
 * lookup is not cached: the next request asks again.
 */
export function createSchoolDirectory (options: SchoolDirectoryOptions): SchoolDirectory {
  const schools = schoolsRepository(options.catalog)
  const unknownTtl = Math.max(1, Math.min(options.unknownTtlMs ?? 5_000, options.ttlMs))
  const queryTimeout = options.queryTimeoutMs ?? 2_000
  let hits = 0
  let misses = 0

  const cache = new LRUCache<string, Entry>({
    max: options.maxEntries ?? 10_000,
    // lru-cache reads 0 as "no expiry"; 1 ms keeps merging without caching.
    ttl: Math.max(1, options.ttlMs),
    fetchMethod: async (slug, _stale, { options: entry }) => {
      const school = await schools.findBySlug(slug, { timeoutMs: queryTimeout })
      if (school === null) entry.ttl = unknownTtl
      return { school }
    }
  })

  return {
    async resolve (slug) {
      // The hot path: a synchronous hit, without fetch()'s promise and status.
      const cached = cache.get(slug)
      if (cached !== undefined) {
        hits++
        return cached.school
      }
      const status: LRUCache.Status<string, Entry> = {}
      let entry: Entry | undefined
      try {
        entry = await cache.fetch(slug, { status })
      } catch (error) {
        // A change notification deleted the entry while it was being read:
        // the answer in flight may predate the change, so read it again.
        if (status.fetchAborted !== true && (error as Error).message !== 'deleted') throw new CatalogUnavailable()
        try {
          entry = await cache.fetch(slug, { status })
        } catch {
          throw new CatalogUnavailable()
        }
      }
      if (status.fetch === 'hit') hits++
      else misses++
      return entry?.school ?? null
    },
    invalidate (slug) {
      cache.delete(slug)
    },
    clear () {
      cache.clear()
    },
    stats: () => ({ hits, misses, entries: cache.size })
  }
}
