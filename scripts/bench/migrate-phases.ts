import { openCatalog } from '../../src/catalog/catalog.js'
import { createKnex } from '../../src/postgres/connection.js'
import type { MigrateRun } from './fleet.js'

/**
 * A migrate run in three parts, from the catalog's own record of when each
 * school was finished: start-up (Node, the catalog, the servers, their
 * templates) until the first school, the steady run of schools, and the
 * tail (the summary, closing) after the last.
 */
export interface Phases {
  schools: number
  startupSeconds: number
  steadySeconds: number
  tailSeconds: number
  /** Schools a second between the first and the last. */
  perSecond: number
}

export async function migratePhases (catalogUrl: string, run: MigrateRun): Promise<Phases | null> {
  const catalog = openCatalog(catalogUrl, 1)
  try {
    const { rows } = await catalog.raw<{ rows: Array<{ n: number, first: Date | null, last: Date | null }> }>(
      'SELECT count(*)::int AS n, min(migrated_at) AS first, max(migrated_at) AS last FROM school_migration_status WHERE migrated_at BETWEEN ? AND ?',
      [run.startedAt, run.endedAt])
    const row = rows[0]
    if (row === undefined || row.first === null || row.last === null || row.n === 0) return null
    const seconds = (from: Date, to: Date): number => Math.max(0, (to.getTime() - from.getTime()) / 1000)
    const steadySeconds = seconds(row.first, row.last)
    return {
      schools: row.n,
      startupSeconds: seconds(run.startedAt, row.first),
      steadySeconds,
      tailSeconds: seconds(row.last, run.endedAt),
      perSecond: steadySeconds > 0 ? (row.n - 1) / steadySeconds : 0
    }
  } finally {
    await catalog.destroy()
  }
}

/**
 * Samples, every 100 ms, the connections migrate holds on each server (its
 * schools, its CREATE DATABASE pool and its probe); stop() gives each
 * server's peak: the bound on connections per server, seen from outside.
 */
export function sampleMigrateConnections (serverUrls: readonly string[]): { stop: () => Promise<number[]> } {
  const admins = serverUrls.map((url) => createKnex(url, { max: 1, applicationName: 'school-lunch:bench' }))
  const peaks = serverUrls.map(() => 0)
  const stopped = new AbortController()
  const loop = (async () => {
    while (!stopped.signal.aborted) {
      await Promise.all(admins.map(async (admin, i) => {
        const n = await admin.raw<{ rows: Array<{ n: number }> }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'school-lunch:migrate%'")
          .then(({ rows }) => rows[0]?.n ?? 0, () => 0)
        peaks[i] = Math.max(peaks[i] ?? 0, n)
      }))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  return {
    stop: async () => {
      stopped.abort()
      await loop
      await Promise.all(admins.map(async (admin) => { await admin.destroy() }))
      return peaks
    }
  }
}
