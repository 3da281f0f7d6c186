import fs from 'node:fs'
import type { Knex } from 'knex'

/**
 * A process's memory from /proc/<pid>/smaps_rollup, in MiB: PSS counts
 * shared pages in proportion, so backends that share PostgreSQL's buffers
 * add up to what they really cost. Null where it cannot be read (not
 * Linux, or another user's process without the right).
 */
export function processMemory (pid: number): { pss: number, rss: number } | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]) / 1024
    const pss = field('Pss')
    const rss = field('Rss')
    return Number.isFinite(pss) && Number.isFinite(rss) ? { pss, rss } : null
  } catch {
    return null
  }
}

export interface BackendMemory {
  backends: number
  /** Summed PSS of those backends, MiB; null where none can be read. */
  pss: number | null
}

/** The PostgreSQL backends the service holds to school databases: how many, and what they cost. */
export async function backendMemory (admin: Knex): Promise<BackendMemory> {
  const { rows } = await admin.raw<{ rows: Array<{ pid: number }> }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'school-lunch:api'")
  return { backends: rows.length, pss: summedPss(rows.map((row) => row.pid)) }
}

/**
 * Summed PSS of these processes, MiB; null when none can be read. A
 * backend whose pool idled out between the query that listed it and here
 * is gone, and left out.
 */
export function summedPss (pids: readonly number[]): number | null {
  let total = 0
  let read = 0
  for (const pid of pids) {
    const memory = processMemory(pid)
    if (memory === null) continue
    total += memory.pss
    read++
  }
  return read === 0 ? null : total
}
