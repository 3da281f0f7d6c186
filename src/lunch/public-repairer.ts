import type { FastifyBaseLogger } from 'fastify'
import type { Knex } from 'knex'
import { createKnex } from '../postgres/connection.js'
import { isSafeName } from '../postgres/names.js'
import { schoolRoleUrl, schoolStartup } from '../postgres/roles.js'
import type { PendingSchool, PublicCopies } from './public-menus.js'
import { lunchWeeks } from './repository.js'

export interface RepairerOptions {
  copies: PublicCopies
  /** Tenant server name → URL. */
  servers: Record<string, string>
  /** Server name → its pooler, where the repair connects instead. */
  poolers?: Record<string, string>
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
  const repairer = new PublicRepairer(options)
  return {
    repair: async (passOptions) => await repairer.repair(passOptions),
    start: (intervalMs) => { repairer.start(intervalMs) },
    close: async () => { await repairer.close() },
    stats: () => repairer.stats()
  }
}

class PublicRepairer {
  private readonly backoff = new Map<number, { until: number, delayMs: number }>()
  private readonly counts = { repairs: 0, failures: 0, connectionsOpened: 0 }
  private running: Promise<number> | null = null
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly options: RepairerOptions) {}

  stats (): { repairs: number, failures: number, connectionsOpened: number } {
    return { ...this.counts }
  }

  async repair ({ olderThanMs = this.options.repairAfterMs } = {}): Promise<number> {
    // A caller during a pass waits for it, then runs its own.
    while (this.running !== null) await this.running.catch(() => {})
    this.running = this._pass(olderThanMs)
    try {
      return await this.running
    } finally {
      this.running = null
    }
  }

  start (intervalMs: number): void {
    const tick = (): void => {
      // A failed pass (say, the catalog is down) is simply tried again next tick.
      void this.repair().catch((error: unknown) => { this.options.log.warn({ err: error }, 'public copy repair pass failed') })
    }
    this.timer = setInterval(tick, intervalMs)
    this.timer.unref()
    tick()
  }

  async close (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    await this.running?.catch(() => {})
  }

  /**
   * Batch after batch until no school is left to try. Schools waiting out a
   * backoff, and those already tried in this pass (say, another process
   * held them), are left out of the query: however many fail, they cannot
   * keep the others from their turn.
   */
  private async _pass (olderThanMs: number): Promise<number> {
    let repaired = 0
    const tried = new Set<number>()
    while (true) {
      const now = Date.now()
      const skip = [...tried, ...[...this.backoff].filter(([, wait]) => wait.until > now).map(([id]) => id)]
      const batch = await this.options.copies.pendingSchools(olderThanMs, this.options.batchSize ?? 50, skip)
      if (batch.length === 0) return repaired
      for (const school of batch) {
        tried.add(school.id)
        if (await this._repairOne(school, olderThanMs)) repaired++
      }
    }
  }

  private async _repairOne (school: PendingSchool, olderThanMs: number): Promise<boolean> {
    try {
      const done = await this._repairSchool(school, olderThanMs)
      if (done) this.counts.repairs++
      this.backoff.delete(school.id)
      return done
    } catch (error) {
      this.counts.failures++
      const delayMs = Math.min((this.backoff.get(school.id)?.delayMs ?? BACKOFF_MS / 2) * 2, BACKOFF_MAX_MS)
      this.backoff.set(school.id, { until: Date.now() + delayMs, delayMs })
      this.options.log.warn({ err: error, school: school.slug }, 'public copies of this school could not be repaired; retrying later')
      return false
    }
  }

  private async _repairSchool (school: PendingSchool, olderThanMs: number): Promise<boolean> {
    const { options } = this
    // Through the server's pooler, when it has one, as the API's pools go.
    const pooler = options.poolers?.[school.server]
    const serverUrl = pooler ?? options.servers[school.server]
    if (serverUrl === undefined || !isSafeName(school.databaseName)) throw new Error(`school ${school.slug} has no usable database`)
    let db: Knex | null = null
    try {
      const done = await options.copies.copySchool(school.id, () => {
        db = createKnex(schoolRoleUrl(serverUrl, school.databaseName, options.roleSecret), {
          max: 1, connectTimeoutMillis: 1_500, ...schoolStartup(pooler !== undefined), applicationName: 'school-lunch:public-copy'
        })
        this.counts.connectionsOpened++
        return db
      }, async (trx) => await lunchWeeks(trx).listPublished(), olderThanMs)
      if (done) options.onRepaired(school.id)
      return done
    } finally {
      await (db as Knex | null)?.destroy()
    }
  }
}
