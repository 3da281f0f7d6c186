import type { Knex } from 'knex'
import { countCpu, type CpuPerRequest } from './cpu.js'
import { load, type LoadResult } from './load.js'

/** The route every scenario loads: one week with its five days. */
export const WEEK_PATH = '/api/lunch-weeks/1'

/** The longest a settling warm-up lasts: enough for thousands of schools. */
const SETTLE_CAP_SECONDS = 300

export type NextRequest = () => { path: string, headers: Record<string, string> }

/** What the warm-up before a measured run took: the first fill, printed apart from the steady state. */
export interface Warmup {
  seconds: number
  requests: number
  /** Connections the service opened while warming up; null for the baseline. */
  opened: number | null
  /** A second of load opened no connection before the cap. */
  settled: boolean
}

export interface Measured extends LoadResult {
  /** Connections the service opened to school databases while measured; null for the baseline. */
  opened: number | null
  warmup: Warmup
  /** CPU time per request while measured, when the server's pid was given (and /proc is there). */
  cpu: CpuPerRequest | null
}

export interface MeasureOptions {
  connections: number
  durationSeconds: number
  /** The server is the service: count the connections it opens. */
  service?: boolean
  /**
   * Warm up on until a second of load opens no connection, so the measured
   * window is the steady state, not the first fill; at most SETTLE_CAP_SECONDS.
   */
  settle?: boolean
  /** Warm up for this long instead: for churn, which never stops opening connections. */
  warmupSeconds?: number
  /** The server's process: count the CPU time it and the machine spend per request. */
  pid?: number
}

/** One measured load run after a warm-up. */
export async function measure (url: string, next: NextRequest, options: MeasureOptions): Promise<Measured> {
  const warmup = await warmUp(url, next, options)
  const before = options.service === true ? await openedSoFar(url) : null
  const cpu = options.pid === undefined ? null : countCpu(options.pid)
  const result = await load({ url, connections: options.connections, durationSeconds: options.durationSeconds, next })
  return { ...result, opened: before === null ? null : await openedSoFar(url) - before, warmup, cpu: cpu?.stop(result.requests) ?? null }
}

async function warmUp (url: string, next: NextRequest, options: MeasureOptions): Promise<Warmup> {
  const { connections } = options
  const started = Date.now()
  const first = options.service === true ? await openedSoFar(url) : null
  const initial = options.warmupSeconds ?? Math.min(2, options.durationSeconds)
  let requests = (await load({ url, connections, durationSeconds: initial, next })).requests
  let before = first === null ? null : await openedSoFar(url)
  let settled = false
  const capMs = SETTLE_CAP_SECONDS * 1000
  while (before !== null && options.settle === true && Date.now() - started < capMs) {
    requests += (await load({ url, connections, durationSeconds: 1, next })).requests
    const now = await openedSoFar(url)
    settled = now === before
    before = now
    if (settled) break
  }
  return { seconds: (Date.now() - started) / 1000, requests, opened: first === null || before === null ? null : before - first, settled }
}

const openedSoFar = async (url: string): Promise<number> => (await metrics(url)).tenant_connections_opened_total ?? 0

/** Current values of /metrics, by name. */
export async function metrics (url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return Object.fromEntries(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const [name, value] = l.split(' ')
    return [name ?? '', Number(value)]
  }))
}

/** Samples connections the API holds to school databases, every 100 ms; stop() gives the peak. */
export function sampleConnections (admin: Knex): { stop: () => Promise<number> } {
  let peak = 0
  const stopped = new AbortController()
  const loop = (async () => {
    while (!stopped.signal.aborted) {
      const { rows } = await admin.raw<{ rows: Array<{ n: string }> }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'school-lunch:api'")
      peak = Math.max(peak, Number(rows[0]?.n ?? 0))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  return { stop: async () => { stopped.abort(); await loop; return peak } }
}
