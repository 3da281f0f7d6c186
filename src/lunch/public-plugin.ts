import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { CatalogUnavailable, PublicMenuStale, SchoolNotFound } from '../errors.js'
import { isSafeName } from '../postgres/names.js'
import { createPublicCache, StaleCopies, type PublicAnswer, type PublicCache } from './public-cache.js'
import { publicCopies, type PublicCopies } from './public-menus.js'
import { createRepairer } from './public-repairer.js'
import { lunchWeeks, type WriteOptions } from './repository.js'

declare module 'fastify' {
  interface FastifyInstance {
    publicMenus: PublicMenus
  }
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
  /** The public page answers weeks this many years either side of today, no further. */
  windowYears: number
}

export interface PublicMenusOptions {
  /** Tenant server name → URL, for the repairer's connections. */
  servers: Record<string, string>
  /** Server name → the pooler in front of it, where the repairer connects instead (TENANT_POOLERS). */
  poolers?: Record<string, string>
  roleSecret: string
  /** PUBLIC_WEEK_WINDOW_YEARS. */
  windowYears: number
  /** A note older than this is redone by the repairer. */
  repairAfterMs?: number
  /** How often each process looks for such notes; 0 turns the timer off (tests call repair()). */
  repairIntervalMs?: number
  /** A school with a note older than this answers 503 rather than a copy that may be behind. */
  staleAfterMs?: number
}

/** Seconds public answers may be kept, by this process and by any cache on the way. */
export const PUBLIC_MAX_AGE_SECONDS = 60

// A note is written a round trip before its school's COMMIT, so one older
// than REPAIR_AFTER_MS belongs to a write that has committed or failed long
// since. The stale bound leaves the repairers a few passes before readers
// are refused; docs/security.md, "Never stale past the bound", states
// the bound this gives.
const REPAIR_AFTER_MS = 10_000
const REPAIR_INTERVAL_MS = 5_000
const STALE_AFTER_MS = 30_000

const CATALOG_TIMEOUT_MS = 2_000

/**
 * The notes and copies of staff writes: a note before the school's COMMIT,
 * the copy after it; a copy that fails is left to the repairer.
 */
function tracker (copies: PublicCopies, cache: PublicCache, countFailure: () => void): PublicMenus['track'] {
  return (request) => {
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
          // copyWeek takes the school's connection before the catalog's, in
          // the order the write took them (see public-menus.ts).
          await copies.copyWeek(request.db, school.id, weekOf, async (db) => await lunchWeeks(db).getPublished(weekOf), id)
        } catch (error) {
          // The write has committed and stays; its note stays too, for the repairer.
          countFailure()
          request.log.warn({ err: error, school: school.slug }, 'public copy not written; the repairer will redo it')
        }
        cache.forgetWeek(school.id, weekOf)
      }
    }
  }
}

/**
 * The public menus: answers from the catalog's copies through this
 * process's cache, the notes and copies of staff writes, and the repairer
 * of copies those left behind.
 */
export default fp<PublicMenusOptions>(async (app, options) => {
  const copies = publicCopies(app.catalog)
  const refusals: Record<RefusalReason, number> = { rate_limited: 0, bad_week: 0, stale: 0 }
  let copyFailures = 0
  const cache = createPublicCache({
    copies,
    ttlMs: PUBLIC_MAX_AGE_SECONDS * 1000,
    windowYears: options.windowYears,
    staleAfterMs: options.staleAfterMs ?? STALE_AFTER_MS,
    catalogTimeoutMs: CATALOG_TIMEOUT_MS
  })
  const repairer = createRepairer({
    copies,
    servers: options.servers,
    ...(options.poolers === undefined ? {} : { poolers: options.poolers }),
    roleSecret: options.roleSecret,
    repairAfterMs: options.repairAfterMs ?? REPAIR_AFTER_MS,
    onRepaired: cache.forgetSchool,
    log: app.log
  })

  async function answer (slug: string, weekOf: string): Promise<PublicAnswer> {
    const school = isSafeName(slug) ? await app.tenancy.directory.resolve(slug) : null
    // Suspended schools are not public; unknown and suspended look alike.
    if (school === null || school.status !== 'active') throw new SchoolNotFound(slug)
    try {
      return await cache.get(school.id, weekOf)
    } catch (error) {
      if (!(error instanceof StaleCopies)) throw error
      refusals.stale++
      throw new PublicMenuStale(slug)
    }
  }

  const track = tracker(copies, cache, () => { copyFailures++ })

  const intervalMs = options.repairIntervalMs ?? REPAIR_INTERVAL_MS
  if (intervalMs > 0) app.addHook('onReady', async () => { repairer.start(intervalMs) })
  app.addHook('onClose', async () => { await repairer.close() })

  app.decorate('publicMenus', {
    answer,
    track,
    repair: repairer.repair,
    windowYears: options.windowYears,
    refused: (reason: RefusalReason) => { refusals[reason]++ },
    stats: () => {
      const cached = cache.stats()
      const repairs = repairer.stats()
      return {
        cacheHits: cached.hits,
        cacheMisses: cached.misses,
        cacheEntries: cached.entries,
        refusals: { ...refusals },
        copyFailures,
        repairs: repairs.repairs,
        repairFailures: repairs.failures,
        schoolConnectionsOpened: repairs.connectionsOpened
      }
    }
  })
}, { name: 'public-menus', dependencies: ['catalog', 'tenancy'] })
