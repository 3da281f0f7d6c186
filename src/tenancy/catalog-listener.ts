import pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'

/** What the catalog's school_changed trigger sends. */
export interface SchoolChange {
  /** Slugs before and after the change (one when the slug did not change). */
  slugs: string[]
  /** `<server>/<database>` before and after. */
  databases: string[]
}

export interface CatalogListener {
  /** Resolves once the first LISTEN is in place: changes made after it are heard. */
  ready: Promise<void>
  close: () => Promise<void>
}

const RETRY_MIN_MS = 500
const RETRY_MAX_MS = 10_000

/**
 * LISTENs on the catalog for school changes, on one connection of its own.
 * When the connection drops it reconnects with backoff, and calls
 * `onResync` first thing after: changes sent while it was away are lost,
 * so everything cached must be treated as stale.
 */
export function listenForSchoolChanges (catalogUrl: string, handlers: {
  onChange: (change: SchoolChange) => void
  onResync: () => void
  log: FastifyBaseLogger
}): CatalogListener {
  let client: pg.Client | null = null
  let closed = false
  let retryMs = RETRY_MIN_MS
  let timer: NodeJS.Timeout | null = null
  let everConnected = false
  let listening: () => void = () => {}
  const ready = new Promise<void>((resolve) => { listening = resolve })

  const scheduleReconnect = (): void => {
    if (closed || timer !== null) return
    timer = setTimeout(() => { timer = null; void connect() }, retryMs)
    timer.unref()
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS)
  }

  async function connect (): Promise<void> {
    const next = new pg.Client({ connectionString: catalogUrl, application_name: 'school-lunch:listen', connectionTimeoutMillis: 5_000 })
    next.on('error', () => { /* 'end' follows; reconnecting happens there */ })
    next.on('end', () => {
      if (client === next) client = null
      scheduleReconnect()
    })
    next.on('notification', (message) => {
      if (message.channel !== 'school_changed' || message.payload === undefined) return
      try {
        handlers.onChange(JSON.parse(message.payload) as SchoolChange)
      } catch {
        handlers.log.warn('ignored a malformed school_changed notification')
      }
    })
    try {
      await next.connect()
      await next.query('LISTEN school_changed')
    } catch {
      await next.end().catch(() => {})
      scheduleReconnect()
      return
    }
    if (closed) {
      await next.end().catch(() => {})
      return
    }
    client = next
    retryMs = RETRY_MIN_MS
    if (everConnected) handlers.onResync()
    everConnected = true
    listening()
  }

  void connect()
  return {
    ready,
    async close () {
      closed = true
      if (timer !== null) clearTimeout(timer)
      await client?.end().catch(() => {})
    }
  }
}
