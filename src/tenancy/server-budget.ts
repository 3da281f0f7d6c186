import { TenantPoolsExhausted } from '../errors.js'

interface Waiter {
  resolve: () => void
  reject: (error: Error) => void
  timer: NodeJS.Timeout
}

/**
 * The connections one process may hold on one tenant server, counted one
 * by one from the moment a connection starts opening until it has closed,
 * so connections opening and pools draining count too.
 *
 * Waiters are served first come, first served: a freed slot is handed to
 * the oldest waiter instead of being returned, and tryTake() refuses while
 * anyone waits, so a growing pool cannot take the slot a newcomer waits for.
 */
export class ServerBudget {
  private held = 0
  private readonly queue: Waiter[] = []
  /** Times a connection had to wait for a slot. */
  waits = 0

  /** `onWait` runs whenever a waiter queues: the place to free a slot for it. */
  constructor (readonly server: string, readonly max: number, private readonly onWait: () => void = () => {}) {}

  get inUse (): number {
    return this.held
  }

  get waiting (): number {
    return this.queue.length
  }

  /** A slot now, or false: for a pool that would only grow. */
  tryTake (): boolean {
    if (this.held >= this.max || this.queue.length > 0) return false
    this.held++
    return true
  }

  /** A slot now, or the next one freed; TenantPoolsExhausted after `timeoutMs`. */
  async take (timeoutMs: number): Promise<void> {
    if (this.tryTake()) return
    this.waits++
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.queue.splice(this.queue.indexOf(waiter), 1)
          reject(new TenantPoolsExhausted())
        }, timeoutMs)
      }
      this.queue.push(waiter)
      this.onWait()
    })
  }

  /** Returns a slot: handed to the oldest waiter, if any. */
  give (): void {
    const next = this.queue.shift()
    if (next === undefined) {
      this.held--
      return
    }
    clearTimeout(next.timer)
    next.resolve()
  }

  /** Refuses every waiter: the process is closing. */
  refuseWaiters (): void {
    for (const waiter of this.queue.splice(0)) {
      clearTimeout(waiter.timer)
      waiter.reject(new TenantPoolsExhausted())
    }
  }
}
