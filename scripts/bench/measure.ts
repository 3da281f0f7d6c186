import type { Knex } from 'knex'
import { load, type LoadResult } from './load.js'

/** The route every scenario loads: one week with its five days. */
export const WEEK_PATH = '/api/lunch-weeks/1'

export type NextRequest = () => { path: string, headers: Record<string, string> }
export interface Measured extends LoadResult {
  /** Connections the service opened to school databases while measured; null for the baseline. */
  opened: number | null
}

export interface MeasureOptions {
  connections: number
  durationSeconds: number
  /** The server is the service: count the connections it opens. */
  service?: boolean
  /** Warm up on until a second of load opens no connection (at most 20 s). */
  settle?: boolean
}

/** One measured load run after a warm-up. */
export async function measure (url: string, next: NextRequest, options: MeasureOptions): Promise<Measured> {
  const { connections, durationSeconds } = options
  await load({ url, connections, durationSeconds: Math.min(2, durationSeconds), next })
  // Between rounds idle connections close (by design), and reopening 50 of
  // them can outlast a short warm-up on a slow machine: hence `settle`.
  const openedSoFar = async (): Promise<number> => (await metrics(url)).tenant_connections_opened_total ?? 0
  let before = options.service === true ? await openedSoFar() : null
  for (let extra = 0; before !== null && options.settle === true && extra < 20; extra++) {
    await load({ url, connections, durationSeconds: 1, next })
    const now = await openedSoFar()
    const settled = now === before
    before = now
    if (settled) break
  }
  const result = await load({ url, connections, durationSeconds, next })
  return { ...result, opened: before === null ? null : await openedSoFar() - before }
}

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
