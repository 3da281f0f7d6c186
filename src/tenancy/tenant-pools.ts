import type { Knex } from 'knex'
import { LRUCache } from 'lru-cache'
import { TenantPoolsExhausted } from '../errors.js'
import { knexOverPool } from '../postgres/connection.js'
import { concurrencyLimit } from './concurrency-limit.js'
import { SchoolPool, type PoolConnection } from './school-pool.js'
import { ServerBudget } from './server-budget.js'

/** One school database as the pools see it. */
export interface TenantTarget {
  /** `<server>/<database>`: one pool per database, whichever slug names it. */
  key: string
  /** The tenant server's name: the budget is per server. */
  server: string
  url: string
}

/** A pool lent to one request; release() it when the request is done. */
export interface TenantLease {
  db: Knex
  release: () => void
}

/** One tenant server, as /metrics shows it. */
export interface ServerPoolStats {
  server: string
  /** TENANT_CONNECTIONS_MAX for this server. */
  budget: number
  /** Connections held against the budget: open, opening or closing. */
  connectionsHeld: number
  connectionsInUse: number
  connectionsIdle: number
  /** Times a school's first connection waited for a slot. */
  slotWaits: number
  growths: number
  shrinks: number
  evictions: number
}

export interface TenantPoolStats {
  open: number
  retiring: number
  connectionsInUse: number
  connectionsIdle: number
  /** Requests waiting for a connection. */
  connectionsPending: number
  /** Connections opened since start: each one is a new PostgreSQL backend. */
  connectionsOpened: number
  hits: number
  misses: number
  evictions: number
  servers: ServerPoolStats[]
}

export interface TenantPools {
  acquire: (target: TenantTarget) => Promise<TenantLease>
  /** Retires the pool of one database (it drains, then closes). */
  drop: (key: string) => void
  stats: () => TenantPoolStats
  /** Retires every pool, all at once, and waits until all are closed. */
  close: () => Promise<void>
}

export interface TenantPoolsOptions {
  /** TENANT_CONNECTIONS_MAX: connections this process may hold on a server. */
  budgetOf: (server: string) => number
  /** TENANT_POOL_SIZE: connections one school may hold. */
  poolSize: number
  /** Opens one connection to a school's database. */
  connect: (target: TenantTarget) => Promise<PoolConnection>
  /**
   * Runs once on each new pool before any request gets it (shared by
   * concurrent first requests); when it throws, the pool is closed and
   * every waiting request gets the error.
   */
  prepare?: (db: Knex) => Promise<void>
  /** Connections opening at once per server: past a few, the postmaster only queues them. */
  connectConcurrency?: number
  /** How long a school's first connection may wait for a slot before a 503. */
  slotTimeoutMs?: number
  /** How long a request may wait for a connection of its school before a 503. */
  acquireTimeoutMs?: number
  /** A school's connections beyond the first close after this long unused. */
  extraIdleMs?: number
  /** TENANT_IDLE_TIMEOUT_MS: a school unused this long loses its last connection. */
  idleTimeoutMs?: number
  /** Every this many acquires, every pool's use count is halved. */
  agingPeriod?: number
  /** How often idle connections are looked for. */
  sweepIntervalMs?: number
  now?: () => number
}

interface Entry {
  key: string
  server: string
  knex: Knex
  pool: SchoolPool
  leases: number
  /** Requests served, halved every agingPeriod acquires: recent popularity. */
  uses: number
  retired: boolean
  closed: Promise<void> | null
}

interface Creation {
  waiters: number
  promise: Promise<Entry>
}

interface Counters { growths: number, shrinks: number, evictions: number }

/*
 * The pools of school databases, under one budget of connections per
 * server. A school's pool starts with one connection and grows while its
 * requests queue and the budget has room (school-pool.ts). When the budget
 * is full, a school that needs its first connection takes one from an idle
 * school: an extra connection first, else the last one of the idle school
 * with the lowest value, counted in uses halved every agingPeriod acquires,
 * the least recent among equals. A busy school is never touched; with
 * nothing idle, the newcomer waits for a slot, then gets a 503.
 *
 * Least recently used alone serves traffic with a long tail badly: every
 * school of the tail that sends one request would push out a school used a
 * little less often than every few requests. Counting uses keeps those and
 * lets newcomers of the tail replace each other.
 *
 * A pool is lent per request (a lease). A retired pool, evicted or dropped,
 * closes only when its last lease comes back, so no request loses its
 * connections mid-flight; its connections count against the budget until
 * they have closed.
 */
export function createTenantPools (options: TenantPoolsOptions): TenantPools {
  const now = options.now ?? Date.now
  const idleTimeoutMs = options.idleTimeoutMs ?? 300_000
  const agingPeriod = options.agingPeriod ?? 1_000
  // The budget, not the cache, bounds what is open; the LRU only orders.
  const live = new LRUCache<string, Entry>({ max: 1_000_000 })
  const retiring = new Set<Entry>()
  const creating = new Map<string, Creation>()
  const budgets = new Map<string, ServerBudget>()
  const connectLimits = new Map<string, <T>(fn: () => Promise<T>) => Promise<T>>()
  const counters = new Map<string, Counters>()
  let hits = 0
  let misses = 0
  let connectionsOpened = 0
  let acquires = 0
  let closed = false

  const sweep = setInterval(() => { sweepIdle() }, options.sweepIntervalMs ?? 1_000)
  sweep.unref()

  function countersOf (server: string): Counters {
    let found = counters.get(server)
    if (found === undefined) counters.set(server, found = { growths: 0, shrinks: 0, evictions: 0 })
    return found
  }

  function budgetOf (server: string): ServerBudget {
    let budget = budgets.get(server)
    if (budget === undefined) {
      budget = new ServerBudget(server, options.budgetOf(server), () => { makeRoom(server) })
      budgets.set(server, budget)
    }
    return budget
  }

  function connectLimitOf (server: string): <T>(fn: () => Promise<T>) => Promise<T> {
    let limit = connectLimits.get(server)
    if (limit === undefined) connectLimits.set(server, limit = concurrencyLimit(options.connectConcurrency ?? 8))
    return limit
  }

  /**
   * Frees slots for the schools waiting for one on this server: one idle
   * connection per waiter that no closing connection will serve.
   */
  function makeRoom (server: string): void {
    const budget = budgetOf(server)
    while (closingOn(server) < budget.waiting && takeFromIdle(server)) { /* one connection closed per turn */ }
  }

  function closingOn (server: string): number {
    let closing = 0
    for (const entry of [...liveEntries(), ...retiring]) if (entry.server === server) closing += entry.pool.numClosing()
    return closing
  }

  /** Oldest first in rvalues(), so the first of equal counts is the least recent. */
  function takeFromIdle (server: string): boolean {
    let victim: Entry | undefined
    for (const entry of live.rvalues()) {
      if (entry === undefined || entry.server !== server || entry.leases > 0 || entry.pool.numFree() === 0) continue
      if (entry.pool.size > 1) return entry.pool.closeOneIdle()
      if (victim === undefined || entry.uses < victim.uses) victim = entry
    }
    if (victim === undefined) return false
    countersOf(server).evictions++
    retire(victim)
    return true
  }

  function retire (entry: Entry): void {
    if (entry.retired) return
    entry.retired = true
    if (live.peek(entry.key) === entry) live.delete(entry.key)
    retiring.add(entry)
    if (entry.leases === 0) closeEntry(entry)
  }

  function closeEntry (entry: Entry): void {
    entry.closed ??= entry.pool.close().finally(() => { retiring.delete(entry) })
  }

  const liveEntries = (): Entry[] => [...live.values()].filter((entry): entry is Entry => entry !== undefined)

  function sweepIdle (): void {
    const at = now()
    for (const entry of liveEntries()) {
      entry.pool.trim(at)
      if (entry.leases === 0 && at - entry.pool.lastActive >= idleTimeoutMs) retire(entry)
    }
  }

  function lease (entry: Entry): TenantLease {
    let returned = false
    return {
      db: entry.knex,
      release: () => {
        if (returned) return
        returned = true
        if (--entry.leases > 0) return
        if (entry.retired) closeEntry(entry)
        else if (budgetOf(entry.server).waiting > 0) makeRoom(entry.server)
      }
    }
  }

  function age (): void {
    if (++acquires < agingPeriod) return
    acquires = 0
    for (const entry of liveEntries()) entry.uses >>= 1
  }

  function newEntry (target: TenantTarget): Entry {
    const stats = countersOf(target.server)
    const limit = connectLimitOf(target.server)
    const pool = new SchoolPool({
      connect: async () => await limit(async () => await options.connect(target)),
      slots: budgetOf(target.server),
      maxSize: options.poolSize,
      acquireTimeoutMs: options.acquireTimeoutMs ?? 5_000,
      slotTimeoutMs: options.slotTimeoutMs ?? 5_000,
      extraIdleMs: options.extraIdleMs ?? 5_000,
      now,
      events: { opened: () => { connectionsOpened++ }, grew: () => { stats.growths++ }, shrank: () => { stats.shrinks++ } }
    })
    return { key: target.key, server: target.server, knex: knexOverPool(pool), pool, leases: 0, uses: 0, retired: false, closed: null }
  }

  async function create (target: TenantTarget, creation: () => Creation): Promise<Entry> {
    const entry = newEntry(target)
    try {
      await options.prepare?.(entry.knex)
      if (closed) throw new TenantPoolsExhausted()
    } catch (error) {
      await entry.pool.close()
      throw error
    } finally {
      creating.delete(target.key)
    }
    // Leases are counted in before anyone else sees the pool, so it cannot
    // be taken for a newcomer between its creation and its first use.
    const { waiters } = creation()
    entry.leases = waiters
    entry.uses = waiters
    live.set(target.key, entry)
    return entry
  }

  return {
    async acquire (target) {
      if (closed) throw new TenantPoolsExhausted()
      age()
      const existing = live.get(target.key)
      if (existing !== undefined) {
        hits++
        existing.uses++
        existing.leases++
        return lease(existing)
      }
      let creation = creating.get(target.key)
      if (creation === undefined) {
        misses++
        const pending: Creation = { waiters: 0, promise: Promise.resolve(null as unknown as Entry) }
        pending.promise = create(target, () => pending)
        creating.set(target.key, pending)
        creation = pending
      }
      creation.waiters++
      try {
        return lease(await creation.promise)
      } catch (error) {
        creation.waiters--
        throw error
      }
    },

    drop (key) {
      const entry = live.peek(key)
      if (entry !== undefined) retire(entry)
    },

    stats () {
      return summarize(liveEntries(), retiring, budgets, counters, { hits, misses, connectionsOpened })
    },

    async close () {
      closed = true
      clearInterval(sweep)
      for (const budget of budgets.values()) budget.refuseWaiters()
      for (const entry of liveEntries()) retire(entry)
      for (const entry of retiring) closeEntry(entry)
      await Promise.all([...retiring].map(async (entry) => await entry.closed))
    }
  }
}

function summarize (
  live: Entry[], retiring: Set<Entry>, budgets: Map<string, ServerBudget>, counters: Map<string, Counters>,
  totals: { hits: number, misses: number, connectionsOpened: number }
): TenantPoolStats {
  const servers = new Map<string, ServerPoolStats>()
  for (const [server, budget] of budgets) {
    const { growths, shrinks, evictions } = counters.get(server) ?? { growths: 0, shrinks: 0, evictions: 0 }
    servers.set(server, {
      server, budget: budget.max, connectionsHeld: budget.inUse, connectionsInUse: 0, connectionsIdle: 0, slotWaits: budget.waits, growths, shrinks, evictions
    })
  }
  let connectionsPending = 0
  for (const entry of [...live, ...retiring]) {
    const server = servers.get(entry.server)
    if (server !== undefined) {
      server.connectionsInUse += entry.pool.numUsed()
      server.connectionsIdle += entry.pool.numFree()
    }
    connectionsPending += entry.pool.numPendingAcquires()
  }
  const all = [...servers.values()]
  return {
    open: live.length,
    retiring: retiring.size,
    connectionsInUse: all.reduce((n, s) => n + s.connectionsInUse, 0),
    connectionsIdle: all.reduce((n, s) => n + s.connectionsIdle, 0),
    connectionsPending,
    connectionsOpened: totals.connectionsOpened,
    hits: totals.hits,
    misses: totals.misses,
    evictions: all.reduce((n, s) => n + s.evictions, 0),
    servers: all
  }
}
