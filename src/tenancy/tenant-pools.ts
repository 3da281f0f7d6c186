import type { Knex } from 'knex'
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
  /** Every this many acquires on a server, the use counts of its pools are halved; default 20 × its budget. */
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
  return new SchoolPools(options)
}

/** What the pools keep per tenant server. */
interface ServerState {
  budget: ServerBudget
  /** Runs a connection's opening once fewer than connectConcurrency are opening. */
  connecting: <T>(fn: () => Promise<T>) => Promise<T>
  counters: Counters
  /** Acquires since the use counts of this server's pools were last halved. */
  acquires: number
}

class SchoolPools implements TenantPools {
  // The budget bounds what is open; this only orders, least recently used
  // first (a use moves the school to the end). A Map, not an LRUCache: that
  // one allocates arrays of its whole max up front and wipes them whenever
  // it empties, 24 MB and a few ms each time at a max that never binds.
  private readonly live = new Map<string, Entry>()
  private readonly retiring = new Set<Entry>()
  private readonly creating = new Map<string, Creation>()
  private readonly servers = new Map<string, ServerState>()
  private readonly totals = { hits: 0, misses: 0, connectionsOpened: 0 }
  private closed = false
  private readonly now: () => number
  private readonly sweep: NodeJS.Timeout

  constructor (private readonly options: TenantPoolsOptions) {
    this.now = options.now ?? Date.now
    this.sweep = setInterval(() => { this._sweepIdle() }, options.sweepIntervalMs ?? 1_000)
    this.sweep.unref()
  }

  async acquire (target: TenantTarget): Promise<TenantLease> {
    if (this.closed) throw new TenantPoolsExhausted()
    this._age(target.server)
    const existing = this.live.get(target.key)
    if (existing !== undefined) {
      this.live.delete(target.key)
      this.live.set(target.key, existing)
      this.totals.hits++
      existing.uses++
      existing.leases++
      return this._lease(existing)
    }
    let creation = this.creating.get(target.key)
    if (creation === undefined) {
      this.totals.misses++
      const pending: Creation = { waiters: 0, promise: Promise.resolve(null as unknown as Entry) }
      pending.promise = this._create(target, pending)
      this.creating.set(target.key, pending)
      creation = pending
    }
    creation.waiters++
    try {
      return this._lease(await creation.promise)
    } catch (error) {
      creation.waiters--
      throw error
    }
  }

  drop (key: string): void {
    const entry = this.live.get(key)
    if (entry !== undefined) this._retire(entry)
  }

  stats (): TenantPoolStats {
    return summarize(this._liveEntries(), this.retiring, this.servers, this.totals)
  }

  async close (): Promise<void> {
    this.closed = true
    clearInterval(this.sweep)
    for (const { budget } of this.servers.values()) budget.refuseWaiters()
    for (const entry of this._liveEntries()) this._retire(entry)
    for (const entry of this.retiring) this._closeEntry(entry)
    await Promise.all([...this.retiring].map(async (entry) => await entry.closed))
  }

  private _server (name: string): ServerState {
    let state = this.servers.get(name)
    if (state === undefined) {
      state = {
        budget: new ServerBudget(name, this.options.budgetOf(name), () => { this._makeRoom(name) }),
        connecting: concurrencyLimit(this.options.connectConcurrency ?? 8),
        counters: { growths: 0, shrinks: 0, evictions: 0 },
        acquires: 0
      }
      this.servers.set(name, state)
    }
    return state
  }

  private _liveEntries (): Entry[] {
    return [...this.live.values()]
  }

  /**
   * Frees slots for the schools waiting for one on this server: one idle
   * connection per waiter that no closing connection will serve.
   */
  private _makeRoom (server: string): void {
    const { budget } = this._server(server)
    while (this._closingOn(server) < budget.waiting && this._takeFromIdle(server)) { /* one connection closed per turn */ }
  }

  private _closingOn (server: string): number {
    let closing = 0
    for (const entry of [...this._liveEntries(), ...this.retiring]) if (entry.server === server) closing += entry.pool.numClosing()
    return closing
  }

  /** An extra connection of an idle school, else the last one of the least used; least recent first in `live`, so it wins a tie. */
  private _takeFromIdle (server: string): boolean {
    let victim: Entry | undefined
    for (const entry of this.live.values()) {
      if (entry.server !== server || entry.leases > 0 || entry.pool.numFree() === 0) continue
      if (entry.pool.size > 1) return entry.pool.closeOneIdle()
      if (victim === undefined || entry.uses < victim.uses) victim = entry
    }
    if (victim === undefined) return false
    this._server(server).counters.evictions++
    this._retire(victim)
    return true
  }

  private _retire (entry: Entry): void {
    if (entry.retired) return
    entry.retired = true
    if (this.live.get(entry.key) === entry) this.live.delete(entry.key)
    this.retiring.add(entry)
    if (entry.leases === 0) this._closeEntry(entry)
  }

  private _closeEntry (entry: Entry): void {
    entry.closed ??= entry.pool.close().finally(() => { this.retiring.delete(entry) })
  }

  private _sweepIdle (): void {
    const at = this.now()
    const idleTimeoutMs = this.options.idleTimeoutMs ?? 300_000
    for (const entry of this._liveEntries()) {
      entry.pool.trim(at)
      if (entry.leases === 0 && at - entry.pool.lastActive >= idleTimeoutMs) this._retire(entry)
    }
  }

  private _lease (entry: Entry): TenantLease {
    let returned = false
    return {
      db: entry.knex,
      release: () => {
        if (returned) return
        returned = true
        if (--entry.leases > 0) return
        if (entry.retired) this._closeEntry(entry)
        else if (this._server(entry.server).budget.waiting > 0) this._makeRoom(entry.server)
      }
    }
  }

  /**
   * Halves the use counts of a server's pools every agingPeriod acquires
   * there, so a school gone quiet loses its place. The period grows with
   * the budget: with a short one, schools used now and then fall to the
   * count of a newcomer and are taken for them.
   */
  private _age (server: string): void {
    const state = this._server(server)
    if (++state.acquires < (this.options.agingPeriod ?? 20 * state.budget.max)) return
    state.acquires = 0
    for (const entry of this._liveEntries()) if (entry.server === server) entry.uses >>= 1
  }

  private _newEntry (target: TenantTarget): Entry {
    const { budget, connecting, counters } = this._server(target.server)
    const pool = new SchoolPool({
      connect: async () => await connecting(async () => await this.options.connect(target)),
      slots: budget,
      maxSize: this.options.poolSize,
      acquireTimeoutMs: this.options.acquireTimeoutMs ?? 5_000,
      slotTimeoutMs: this.options.slotTimeoutMs ?? 5_000,
      extraIdleMs: this.options.extraIdleMs ?? 5_000,
      now: this.now,
      events: { opened: () => { this.totals.connectionsOpened++ }, grew: () => { counters.growths++ }, shrank: () => { counters.shrinks++ } }
    })
    return { key: target.key, server: target.server, knex: knexOverPool(pool), pool, leases: 0, uses: 0, retired: false, closed: null }
  }

  private async _create (target: TenantTarget, creation: Creation): Promise<Entry> {
    const entry = this._newEntry(target)
    try {
      await this.options.prepare?.(entry.knex)
      if (this.closed) throw new TenantPoolsExhausted()
    } catch (error) {
      await entry.pool.close()
      throw error
    } finally {
      this.creating.delete(target.key)
    }
    // Leases are counted in before anyone else sees the pool, so it cannot
    // be taken for a newcomer between its creation and its first use.
    entry.leases = creation.waiters
    entry.uses = creation.waiters
    this.live.set(target.key, entry)
    return entry
  }
}

function summarize (
  live: Entry[], retiring: Set<Entry>, servers: Map<string, ServerState>,
  totals: { hits: number, misses: number, connectionsOpened: number }
): TenantPoolStats {
  const byServer = new Map<string, ServerPoolStats>()
  for (const [server, { budget, counters }] of servers) {
    byServer.set(server, {
      server, budget: budget.max, connectionsHeld: budget.inUse, connectionsInUse: 0, connectionsIdle: 0, slotWaits: budget.waits, ...counters
    })
  }
  let connectionsPending = 0
  for (const entry of [...live, ...retiring]) {
    const server = byServer.get(entry.server)
    if (server !== undefined) {
      server.connectionsInUse += entry.pool.numUsed()
      server.connectionsIdle += entry.pool.numFree()
    }
    connectionsPending += entry.pool.numPendingAcquires()
  }
  const all = [...byServer.values()]
  const sum = (field: 'connectionsInUse' | 'connectionsIdle' | 'evictions'): number => all.reduce((n, s) => n + s[field], 0)
  return {
    open: live.length,
    retiring: retiring.size,
    connectionsInUse: sum('connectionsInUse'),
    connectionsIdle: sum('connectionsIdle'),
    connectionsPending,
    ...totals,
    evictions: sum('evictions'),
    servers: all
  }
}
