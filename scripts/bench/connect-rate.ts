import pg from 'pg'
import { median } from './report.js'

export interface ConnectRate {
  concurrency: number
  perSecond: number
  /** Milliseconds from connect to closed, for one connection. */
  p50: number
  errors: number
}

/**
 * This machine's ceiling for new connections: connect, one query, close, as
 * a school's own role, `concurrency` at a time, over the given databases in
 * turn. It is what every pool miss costs, with no service in between.
 */
export async function connectRate (urls: string[], concurrency: number, seconds: number): Promise<ConnectRate> {
  const latencies: number[] = []
  let errors = 0
  let turn = 0
  const deadline = Date.now() + seconds * 1000
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const started = performance.now()
      const client = new pg.Client({ connectionString: urls[turn++ % urls.length], application_name: 'school-lunch:bench-connect' })
      try {
        await client.connect()
        await client.query('SELECT 1')
        await client.end()
        latencies.push(performance.now() - started)
      } catch {
        errors++
        await client.end().catch(() => {})
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { concurrency, perSecond: latencies.length / seconds, p50: Math.round(median(latencies)), errors }
}
