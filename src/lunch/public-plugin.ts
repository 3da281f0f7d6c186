import { createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Knex } from 'knex'
import { LRUCache } from 'lru-cache'
import { CatalogUnavailable, PublicMenuStale, PublishedWeekNotFound, SchoolNotFound } from '../errors.js'
import { createKnex } from '../postgres/connection.js'
import { isSafeName } from '../postgres/names.js'
import { schoolRoleUrl } from '../postgres/roles.js'
import { publicCopies, type PendingSchool } from './public-menus.js'
import { lunchWeeks, type WriteOptions } from './repository.js'

declare module 'fastify' {
  interface FastifyInstance {
    publicMenus: PublicMenus
  }
}

/** What the public page sends for one week: the body, already serialized, and its ETag. */
export interface PublicAnswer {
  payload: string
  etag: string
}

export type RefusalReason = 'rate_limited' | 'bad_week' | 'stale'

export interface PublicMenuStats {
  cacheHits: number
  cacheMisses: number
  cacheEntries: number
  refusals: Record<RefusalReason, number>
  /** Copies a staff write could not write at once (left to the repairer). */
  copyFailures: number
  repairs: number
  repairFailures: number
  /** Connections opened to school databases for the read model: repairs only, never a public read. */
  schoolConnectionsOpened: number
}

export interface PublicMenus {
  /** The public page of a school's week: from this process's cache, else from the catalog. */
  answer: (slug: string, weekOf: string) => Promise<PublicAnswer>
  /**
   * For a staff write in the request's school: pass the options to the
   * repository, then await settle() once the write has committed.
   */
  track: (request: FastifyRequest) => WriteOptions & { settle: () => Promise<void> }
  /** One pass of the repairer over schools with notes older than `olderThanMs`; returns schools repaired. */
  repair: (options?: { olderThanMs?: number }) => Promise<number>
  refused: (reason: RefusalReason) => void
  stats: () => PublicMenuStats
}

export interface PublicMenusOptions {
  /** Tenant server name → URL, for the repairer's connections. */
  servers: Record<string, string>
  roleSecret: string
  /** A note older than this is redone by the repairer. */
  repairAfterMs?: number
  /** How often each process looks for such notes; 0 turns the timer off (tests call repair()). */
  repairIntervalMs?: number
  /** A school with a note older than this answers 503 rather than a copy that may be behind. */
  staleAfterMs?: number
}

/** Seconds public answers may be kept, by this process and by any cache on the way. */
export const PUBLIC_MAX_AGE_SECONDS = 60
/** The public page answers weeks this many years either side of today, no further. */
export const PUBLIC_WEEK_WINDOW_YEARS = 2

export const REPAIR_AFTER_MS = 10_000
export const REPAIR_INTERVAL_MS = 5_000
export const STALE_AFTER_MS = 30_000

const CATALOG_TIMEOUT_MS = 2_000
// Many menus are a few hundred bytes; the byte bound keeps long ones in check.
const CACHE_MAX_ENTRIES = 50_000
const CACHE_MAX_BYTES = 64 * 1024 * 1024
// A school whose repair failed is left alone for this long, doubling up to the cap.
const REPAIR_BACKOFF_MS = 5_000
const REPAIR_BACKOFF_MAX_MS = 300_000
const REPAIR_BATCH = 50

type Answer = PublicAnswer | { missing: true }

export default fp<PublicMenusOptions>(async (app, options) => {
  const copies = publicCopies(app.catalog)
  const directory = app.tenancy.directory
  const repairAfterMs = options.repairAfterMs ?? REPAIR_AFTER_MS
  const staleAfterMs = options.staleAfterMs ?? STALE_AFTER_MS
  const stats = {
    cacheHits: 0,
    cacheMisses: 0,
    refusals: { rate_limited: 0, bad_week: 0, stale: 0 },
    copyFailures: 0,
    repairs: 0,
    repairFailures: 0,
    schoolConnectionsOpened: 0
  }

  // Both keyed by school id, not slug: a slug given to another school must
  // not inherit the old one's answers. Per school, the weeks it publishes:
  // a read of any other week (what a scan asks for) is a 404 without a query.
  const published = new LRUCache<number, Set<string>>({
    max: CACHE_MAX_ENTRIES,
    ttl: PUBLIC_MAX_AGE_SECONDS * 1000,
    fetchMethod: async (schoolId) => {
      const index = await fromCatalog(async () => await copies.publishedWeeks(schoolId, PUBLIC_WEEK_WINDOW_YEARS, staleAfterMs, CATALOG_TIMEOUT_MS))
      if (index.stale) throw new StaleCopy()
      return new Set(index.weeks)
    }
  })
  const answers = new LRUCache<string, Answer>({
    max: CACHE_MAX_ENTRIES,
    maxSize: CACHE_MAX_BYTES,
    sizeCalculation: (answer) => 'payload' in answer ? answer.payload.length + 100 : 100,
    ttl: PUBLIC_MAX_AGE_SECONDS * 1000,
    fetchMethod: async (key) => {
      const [id, weekOf] = key.split('/') as [string, string]
      const week = await fromCatalog(async () => await copies.week(Number(id), weekOf, CATALOG_TIMEOUT_MS))
      if (week === null) return { missing: true }
      const payload = JSON.stringify(week)
      return { payload, etag: `"${createHash('sha1').update(payload).digest('base64')}"` }
    }
  })
  const keyOf = (schoolId: number, weekOf: string): string => `${schoolId}/${weekOf}`

  /** A cached value, or one fetched once for all concurrent callers; `missed` learns of a fetch. */
  async function cached<K extends {}, V extends {}> (cache: LRUCache<K, V>, key: K, missed: () => void): Promise<V> {
    const hit = cache.get(key)
    if (hit !== undefined) return hit
    missed()
    try {
      return await cache.fetch(key) as V
    } catch (error) {
      // A staff write forgot this key while it was being read: the answer
      // in flight may predate the write, so read it again.
      if ((error as Error).message === 'deleted') return await cache.fetch(key) as V
      throw error
    }
  }

  async function answer (slug: string, weekOf: string): Promise<PublicAnswer> {
    const school = isSafeName(slug) ? await directory.resolve(slug) : null
    // Suspended schools are not public; unknown and suspended look alike.
    if (school === null || school.status !== 'active') throw new SchoolNotFound(slug)
    let missed = false
    const miss = (): void => { missed = true }
    try {
      const weeks = await cached(published, school.id, miss)
      const found = weeks.has(weekOf) ? await cached(answers, keyOf(school.id, weekOf), miss) : null
      if (found === null || 'missing' in found) throw new PublishedWeekNotFound()
      return found
    } catch (error) {
      if (!(error instanceof StaleCopy)) throw error
      stats.refusals.stale++
      throw new PublicMenuStale(slug)
    } finally {
      if (missed) stats.cacheMisses++
      else stats.cacheHits++
    }
  }

  function forgetSchool (schoolId: number): void {
    published.delete(schoolId)
    const prefix = `${schoolId}/`
    for (const key of [...answers.keys()]) if (key.startsWith(prefix)) answers.delete(key)
  }

  function track (request: FastifyRequest): WriteOptions & { settle: () => Promise<void> } {
    const school = request.school
    if (school === null) throw new Error('public copies are tracked for a request with a school only')
    let pending: { id: number, weekOf: string } | null = null
    return {
      beforeCommit: async (write) => {
        if (!write.touchesPublic) return
        try {
          pending = { id: await copies.markPending(school.id, CATALOG_TIMEOUT_MS), weekOf: write.weekOf }
        } catch (error) {
          request.log.warn({ err: error, school: school.slug }, 'could not note a public change; the write is rolled back')
          throw new CatalogUnavailable()
        }
      },
      settle: async () => {
        if (pending === null) return
        const { id, weekOf } = pending
        try {
          await copies.copyWeek(school.id, weekOf, async () => await lunchWeeks(request.db).getPublished(weekOf), id)
        } catch (error) {
          // The write has committed and stays; its note stays too, for the repairer.
          stats.copyFailures++
          request.log.warn({ err: error, school: school.slug }, 'public copy not written; the repairer will redo it')
        }
        published.delete(school.id)
        answers.delete(keyOf(school.id, weekOf))
      }
    }
  }

  const backoff = new Map<number, { until: number, delayMs: number }>()

  async function repairSchool (school: PendingSchool, olderThanMs: number): Promise<boolean> {
    const serverUrl = options.servers[school.server]
    if (serverUrl === undefined || !isSafeName(school.databaseName)) throw new Error(`school ${school.slug} has no usable database`)
    let db: Knex | null = null
    try {
      const done = await copies.copySchool(school.id, async () => {
        // A connection of its own, outside the tenant pools: a repair must
        // never take a pool slot from a school in use.
        db = createKnex(schoolRoleUrl(serverUrl, school.databaseName, options.roleSecret), {
          max: 1, connectTimeoutMillis: 1_500, statementTimeoutMillis: 15_000, applicationName: 'school-lunch:public-copy'
        })
        stats.schoolConnectionsOpened++
        return await lunchWeeks(db).listPublished()
      }, olderThanMs)
      if (done) forgetSchool(school.id)
      return done
    } finally {
      await (db as Knex | null)?.destroy()
    }
  }

  let running: Promise<number> | null = null
  async function repairPass (olderThanMs: number): Promise<number> {
    let repaired = 0
    for (const school of await copies.pendingSchools(olderThanMs, REPAIR_BATCH)) {
      const wait = backoff.get(school.id)
      if (wait !== undefined && wait.until > Date.now()) continue
      try {
        if (await repairSchool(school, olderThanMs)) {
          repaired++
          stats.repairs++
        }
        backoff.delete(school.id)
      } catch (error) {
        stats.repairFailures++
        const delayMs = Math.min((wait?.delayMs ?? REPAIR_BACKOFF_MS / 2) * 2, REPAIR_BACKOFF_MAX_MS)
        backoff.set(school.id, { until: Date.now() + delayMs, delayMs })
        app.log.warn({ err: error, school: school.slug }, 'public copies of this school could not be repaired; retrying later')
      }
    }
    return repaired
  }

  async function repair ({ olderThanMs = repairAfterMs } = {}): Promise<number> {
    // One pass at a time per process; a caller during a pass waits for it, then runs its own.
    while (running !== null) await running.catch(() => {})
    running = repairPass(olderThanMs)
    try {
      return await running
    } finally {
      running = null
    }
  }

  const intervalMs = options.repairIntervalMs ?? REPAIR_INTERVAL_MS
  let timer: NodeJS.Timeout | null = null
  if (intervalMs > 0) {
    const tick = (): void => {
      // A failed pass (say, the catalog is down) is simply tried again next tick.
      void repair().catch((error: unknown) => { app.log.warn({ err: error }, 'public copy repair pass failed') })
    }
    app.addHook('onReady', async () => {
      timer = setInterval(tick, intervalMs)
      timer.unref()
      tick()
    })
  }
  app.addHook('onClose', async () => {
    if (timer !== null) clearInterval(timer)
    await running?.catch(() => {})
  })

  app.decorate('publicMenus', {
    answer,
    track,
    repair,
    refused: (reason: RefusalReason) => { stats.refusals[reason]++ },
    stats: () => ({ ...stats, refusals: { ...stats.refusals }, cacheEntries: published.size + answers.size })
  })
}, { name: 'public-menus', dependencies: ['catalog', 'tenancy'] })

/** The school's copies may be behind: refused rather than served. Never cached. */
class StaleCopy extends Error {}

async function fromCatalog<T> (read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch {
    throw new CatalogUnavailable()
  }
}
