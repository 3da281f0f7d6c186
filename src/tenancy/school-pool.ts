import type pg from 'pg'

/** A connection as the pool keeps it: knex marks a broken one `__knex__disposed`, and so do we. */
export type PoolConnection = pg.Client & { __knex__disposed?: unknown, __knexUid?: string }

/** What a pool needs from its server's budget (server-budget.ts). */
export interface Slots {
  tryTake: () => boolean
  take: (timeoutMs: number) => Promise<void>
  give: () => void
}

export interface SchoolPoolOptions {
  /** Opens one connection to the school's database. */
  connect: () => Promise<PoolConnection>
  slots: Slots
  /** TENANT_POOL_SIZE: the most connections this school may hold. */
  maxSize: number
  /** A request waits this long for a connection, then gets a 503. */
  acquireTimeoutMs: number
  /** A first connection waits this long for a slot of the server's budget. */
  slotTimeoutMs: number
  /** Connections beyond the first close after this long unused. */
  extraIdleMs: number
  now: () => number
  events?: { opened?: () => void, grew?: () => void, shrank?: () => void }
}

/** No connection came free in time: the school is busier than its pool. */
export class PoolBusy extends Error {
  override name = 'PoolBusy'
  constructor () {
    super('no connection of the school pool came free in time')
  }
}

interface Waiter {
  resolve: (connection: PoolConnection) => void
  reject: (error: Error) => void
  timer: NodeJS.Timeout
}

interface Idle { connection: PoolConnection, since: number }

let connectionIds = 0

/*
 * The connections of one school database, handed to its Knex through
 * knex's `connectionPool` option. It starts empty and opens its first
 * connection on the first acquire, waiting for a slot of the server's budget
 * if need be. It grows by one connection while requests queue and the
 * budget has a slot to spare at once, never by waiting; connections beyond
 * the first close after extraIdleMs unused. The last one stays until the
 * pool is retired (tenant-pools.ts decides when).
 */
export class SchoolPool {
  private readonly idle: Idle[] = []
  private readonly busy = new Set<PoolConnection>()
  private readonly waiters: Waiter[] = []
  private opening = 0
  private closed = false
  private closing = 0
  private onEmpty: (() => void) | null = null
  /** When the pool last lent or took back a connection. */
  lastActive: number

  constructor (private readonly options: SchoolPoolOptions) {
    this.lastActive = options.now()
  }

  /** Connections open or opening. */
  get size (): number {
    return this.idle.length + this.busy.size + this.opening
  }

  // knex recognises an external pool by these, and asks no more of it.
  numUsed (): number { return this.busy.size }
  numFree (): number { return this.idle.length }
  numPendingAcquires (): number { return this.waiters.length }
  numPendingCreates (): number { return this.opening }
  /** Connections ending: slots of the budget about to come free. */
  numClosing (): number { return this.closing }

  acquire (): { promise: Promise<PoolConnection> } {
    const promise = new Promise<PoolConnection>((resolve, reject) => {
      if (this.closed) {
        reject(new PoolBusy())
        return
      }
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this._forget(waiter)
          reject(new PoolBusy())
        }, this.options.acquireTimeoutMs)
      }
      this.waiters.push(waiter)
      this._dispatch()
    })
    return { promise }
  }

  release (connection: PoolConnection): boolean {
    if (!this.busy.delete(connection)) return false
    this.lastActive = this.options.now()
    if (this.closed || connection.__knex__disposed !== undefined) this._close(connection)
    else this.idle.push({ connection, since: this.lastActive })
    this._dispatch()
    return true
  }

  /** Knex does not close an external pool; tenant-pools.ts calls close(). */
  async destroy (): Promise<void> {}

  /** Closes the connections beyond the first that have been unused for extraIdleMs. */
  trim (now: number): void {
    const stale = this.idle.filter((entry) => now - entry.since >= this.options.extraIdleMs)
    for (const entry of stale) {
      if (this.size <= 1) return
      this._take(entry)
      this._close(entry.connection)
      this.options.events?.shrank?.()
    }
  }

  /** Closes one unused connection, for a school that needs the slot more. */
  closeOneIdle (): boolean {
    const entry = this.idle[0]
    if (entry === undefined) return false
    this._take(entry)
    this._close(entry.connection)
    this.options.events?.shrank?.()
    return true
  }

  /** Closes every connection: unused ones now, lent ones when they come back. */
  async close (): Promise<void> {
    this.closed = true
    if (this.waiters.length > 0) this._failWaiters(new PoolBusy())
    for (const entry of this.idle.splice(0)) this._close(entry.connection)
    await new Promise<void>((resolve) => {
      this.onEmpty = resolve
      this._checkEmpty()
    })
  }

  /** Lends idle connections to waiters, then opens one if they still queue. */
  private _dispatch (): void {
    while (this.waiters.length > 0 && this.idle.length > 0) {
      const entry = this.idle.pop() as Idle
      if (entry.connection.__knex__disposed !== undefined) {
        this._close(entry.connection)
        continue
      }
      const waiter = this.waiters.shift() as Waiter
      clearTimeout(waiter.timer)
      this.busy.add(entry.connection)
      this.lastActive = this.options.now()
      waiter.resolve(entry.connection)
    }
    if (this.closed || this.waiters.length <= this.opening || this.size >= this.options.maxSize) return
    if (this.size === 0) {
      this._open(this.options.slots.take(this.options.slotTimeoutMs))
    } else if (this.options.slots.tryTake()) {
      this.options.events?.grew?.()
      this._open(Promise.resolve())
    }
  }

  /** Opens a connection once `slot` is held; the slot goes back if the open fails. */
  private _open (slot: Promise<void>): void {
    this.opening++
    slot.then(async () => await this._connect()).then((connection) => {
      this.opening--
      if (this.closed) this._close(connection)
      else this.idle.push({ connection, since: this.options.now() })
      this._dispatch()
    }, (error: Error) => {
      this.opening--
      // With nothing open, nobody queued here can be served: a dead
      // server answers every waiting request at once, not after a timeout.
      if (this.size === 0) this._failWaiters(error)
      this._checkEmpty()
    })
  }

  private async _connect (): Promise<PoolConnection> {
    try {
      const connection = await this.options.connect()
      connection.__knexUid = `school-pool-${++connectionIds}`
      this.options.events?.opened?.()
      return connection
    } catch (error) {
      this.options.slots.give()
      throw error
    }
  }

  private _failWaiters (error: Error): void {
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer)
      waiter.reject(error)
    }
  }

  private _forget (waiter: Waiter): void {
    const at = this.waiters.indexOf(waiter)
    if (at >= 0) this.waiters.splice(at, 1)
  }

  private _take (entry: Idle): void {
    this.idle.splice(this.idle.indexOf(entry), 1)
  }

  /** Ends a connection; its slot is given back once PostgreSQL has let it go. */
  private _close (connection: PoolConnection): void {
    this.closing++
    void connection.end().catch(() => {}).finally(() => {
      this.closing--
      this.options.slots.give()
      this._checkEmpty()
    })
  }

  private _checkEmpty (): void {
    if (this.onEmpty !== null && this.size === 0 && this.closing === 0) {
      this.onEmpty()
      this.onEmpty = null
    }
  }
}
