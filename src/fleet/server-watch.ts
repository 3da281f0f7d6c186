import type pg from 'pg'
import { databaseMessage, databaseUrl, openConnection, severConnections } from '../postgres/connection.js'

/*
 * A tenant server can be lost in the middle of a migrate run: stopped (its
 * connections end), or hung (its host or processes frozen: queries on open
 * connections never return, and a statement timeout is enforced by the very
 * server that no longer runs). A watch asks the server `SELECT 1` on a
 * connection of its own, every interval. A server that gives no answer
 * within the timeout, or whose probe connection ends, is taken as lost:
 * every connection this process holds to it is cut, so its schools' work
 * fails at once, and the run fails that server's remaining schools without
 * trying them. A long migration on a server that answers its probe is never
 * cut short: the probe is the only query with a time limit.
 */

export interface ServerWatchOptions {
  /** A server that leaves a probe unanswered this long is lost. */
  timeoutMs: number
  /** How often it is probed; by default a quarter of the timeout, at most every second. */
  intervalMs?: number
}

const CONNECT_TIMEOUT_MS = 5_000

export class ServerWatch {
  private lostReason: string | null = null
  private probing: Promise<boolean> | null = null
  private timer: NodeJS.Timeout | null = null
  private closed = false
  private readonly intervalMs: number

  private constructor (readonly name: string, private readonly url: string, private readonly client: pg.Client, private readonly options: ServerWatchOptions) {
    this.intervalMs = options.intervalMs ?? Math.min(1_000, Math.max(10, Math.floor(options.timeoutMs / 4)))
    client.on('end', () => { this._lose('its connection ended') })
    client.on('error', (error) => { this._lose(databaseMessage(error)) })
    this._schedule()
  }

  /** Opens the probe's connection; rejects when the server cannot be reached. */
  static async open (name: string, url: string, options: ServerWatchOptions): Promise<ServerWatch> {
    const client = await openConnection(databaseUrl(url, 'postgres'), {
      applicationName: 'school-lunch:migrate-probe',
      connectTimeoutMillis: Math.min(CONNECT_TIMEOUT_MS, options.timeoutMs)
    })
    return new ServerWatch(name, url, client, options)
  }

  /** Why the server is taken as lost, naming it; null while it answers. */
  get lost (): string | null {
    return this.lostReason
  }

  /**
   * Probes at once (or joins the probe in flight): true when the server
   * answered. For a school that failed, to tell its own error from a lost server.
   */
  async confirm (): Promise<boolean> {
    if (this.lostReason !== null) return false
    this.probing ??= this._probe().finally(() => { this.probing = null })
    return await this.probing
  }

  /** server_version_num, asked on the probe's connection: a hung server fails it as it fails a probe. */
  async serverVersion (): Promise<number> {
    const { rows } = await this.client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")
    return Number(rows[0]?.v)
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    if (this.lostReason === null) await this.client.end().catch(() => {})
  }

  private _schedule (): void {
    if (this.closed || this.lostReason !== null) return
    this.timer = setTimeout(() => {
      void this.confirm().then(() => { this._schedule() })
    }, this.intervalMs)
    this.timer.unref()
  }

  private async _probe (): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const silent = new Promise<'silent'>((resolve) => { timer = setTimeout(() => { resolve('silent') }, this.options.timeoutMs) })
    try {
      const answer = await Promise.race([this.client.query('SELECT 1').then(() => 'answered' as const), silent])
      if (answer === 'silent') this._lose(`no answer to a liveness probe within ${formatSeconds(this.options.timeoutMs)}`)
    } catch (error) {
      this._lose(databaseMessage(error))
    } finally {
      clearTimeout(timer)
    }
    return this.lostReason === null
  }

  private _lose (why: string): void {
    if (this.closed || this.lostReason !== null) return
    this.lostReason = `server "${this.name}" was lost during the run: ${why}`
    if (this.timer !== null) clearTimeout(this.timer)
    this.client.connection.stream.destroy()
    severConnections(this.url)
  }
}

function formatSeconds (ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`
}
