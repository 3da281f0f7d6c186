import type { FastifyBaseLogger } from 'fastify'
import type { Knex } from 'knex'
import { createKnex } from '../postgres/connection.js'
import { isSafeName } from '../postgres/names.js'
import { schoolRoleUrl } from '../postgres/roles.js'
import type { PendingSchool, PublicCopies } from './public-menus.js'
import { lunchWeeks } from './repository.js'

export interface RepairerOptions {
  copies: PublicCopies
  /** Tenant server name → URL. */
  servers: Record<string, string>
  roleSecret: string
  /** Notes older than this are redone. */
  repairAfterMs: number
  /** Called with each school whose copies were rewritten. */
  onRepaired: (schoolId: number) => void
  log: FastifyBaseLogger
  /** Schools fetched per query (default 50). */
  batchSize?: number
}

export interface Repairer {
  /** One pass over schools with notes older than `olderThanMs`; returns the schools repaired. */
  repair: (options?: { olderThanMs?: number }) => Promise<number>
  /** Passes every `intervalMs` from now on, the first at once. */
  start: (intervalMs: number) => void
  /** Stops the timer and waits for a pass under way. */
  close: () => Promise<void>
  stats: () => { repairs: number, failures: number, connectionsOpened: number }
}

// A school whose repair failed is left alone for this long, doubling up to the cap.
const BACKOFF_MS = 5_000
const BACKOFF_MAX_MS = 300_000

/**
 * Redoes the copies that staff writes left behind: for each school with an
 * old note, every published week is copied afresh from a connection of the
 * repairer's own, one school at a time, outside the tenant pools (a repair
 * must never take a pool slot from a school in use). Passes run one at a
 * time per process; processes skip a school another one is repairing.
 */
export function createRepairer (options: RepairerOptions): Repairer {
  const { copies } = options
  const batchSize = options.batchSize ?? 50
  const backoff = new Map<number, { until: number, delayMs: number }>()
  const counts = { repairs: 0, failures: 0, connectionsOpened: 0 }
  let running: Promise<number> | null = null
  let timer: NodeJS.Timeout | null = null

  async function repairSchool (school: PendingSchool, olderThanMs: number): Promise<boolean> {
    const serverUrl = options.servers[school.server]
    if (serverUrl === undefined || !isSafeName(school.databaseName)) throw new Error(`school ${school.slug} has no usable database`)
    let db: Knex | null = null
    try {
      const done = await copies.copySchool(school.id, () => {
        db = createKnex(schoolRoleUrl(serverUrl, school.databaseName, options.roleSecret), {
          max: 1, connectTimeoutMillis: 1_500, statementTimeoutMillis: 15_000, applicationName: 'school-lunch:public-copy'
        })
        counts.connectionsOpened++
        return db
      }, async (school) => await lunchWeeks(school).listPublished(), olderThanMs)
      if (done) options.onRepaired(school.id)
      return done
    } finally {
      await (db as Knex | null)?.destroy()
    }
  }

  /**
   * Batch after batch until no school is left to try. Schools waiting out a
   * backoff, and those already tried in this pass (say, another process
   * held them), are left out of the query: however many fail, they cannot
   * keep the others from their turn.
   */
  async function pass (olderThanMs: number): Promise<number> {
    let repaired = 0
    const tried = new Set<number>()
    while (true) {
      const now = Date.now()
      const skip = [...tried, ...[...backoff].filter(([, wait]) => wait.until > now).map(([id]) => id)]
      const batch = await copies.pendingSchools(olderThanMs, batchSize, skip)
      if (batch.length === 0) return repaired
      for (const school of batch) {
        tried.add(school.id)
        if (await repairOne(school, olderThanMs)) repaired++
      }
    }
  }

  async function repairOne (school: PendingSchool, olderThanMs: number): Promise<boolean> {
    try {
      const done = await repairSchool(school, olderThanMs)
      if (done) counts.repairs++
      backoff.delete(school.id)
      return done
    } catch (error) {
      counts.failures++
      const delayMs = Math.min((backoff.get(school.id)?.delayMs ?? BACKOFF_MS / 2) * 2, BACKOFF_MAX_MS)
      backoff.set(school.id, { until: Date.now() + delayMs, delayMs })
      options.log.warn({ err: error, school: school.slug }, 'public copies of this school could not be repaired; retrying later')
      return false
    }
  }

  async function repair ({ olderThanMs = options.repairAfterMs } = {}): Promise<number> {
    // A caller during a pass waits for it, then runs its own. `running` is
    // cleared by the pass awaited here, which the rule cannot see.
    // eslint-disable-next-line no-unmodified-loop-condition
    while (running !== null) await running.catch(() => {})
    running = pass(olderThanMs)
    try {
      return await running
    } finally {
      running = null
    }
  }

  return {
    repair,
    start (intervalMs) {
      const tick = (): void => {
        // A failed pass (say, the catalog is down) is simply tried again next tick.
        void repair().catch((error: unknown) => { options.log.warn({ err: error }, 'public copy repair pass failed') })
      }
      timer = setInterval(tick, intervalMs)
      timer.unref()
      tick()
    },
    async close () {
      if (timer !== null) clearInterval(timer)
      await running?.catch(() => {})
    },
    stats: () => ({ ...counts })
  }
}
