import type { BenchOptions } from './options.js'
import { fmt } from './report.js'
import { SCALE_OUT_PROCESSES } from './scenarios/g-scale-out.js'

/*
 * What a run will take from the machine, worked out before anything starts,
 * so a run of thousands of schools is refused at once, not after an hour
 * on a full disk. Figures measured on this machine (PostgreSQL 18):
 */

/** An empty school database after its migrations: its copy of the compacted template (template1 and the app's tables). */
export const SCHOOL_DATABASE_MB = 6.8
/** Per server: the WAL it keeps between checkpoints (max_wal_size 1 GB) and its logs. */
const SERVER_DISK_MB = 1_100
/** Per server: shared_buffers (128 MB) and its background processes. */
const SERVER_MEMORY_MB = 200
/** One idle backend holding a school warm (PSS; scenario E). */
const WARM_BACKEND_MB = 1.9
/** The API process with its pools and caches (scenario E at 1,000 schools). */
const API_MEMORY_MB = 250
/** The schools scenario H keeps active. */
export const H_ACTIVE = 1_000
/** C's small fleets: 100 schools each, three of them. */
export const C_SMALL = 100
/** C's measure of CREATE DATABASE alone: databases over all servers, at most the fleet's size. */
export const C_FLOOR = 200

export interface Needs {
  databases: number
  diskMB: number
  memoryMB: number
  /** One line per part, for the reader to check. */
  parts: string[]
}

/** The school databases, disk and memory a run of these scenarios will need at most. */
export function estimateNeeds (options: BenchOptions, fleetSize: number): Needs {
  const { scenarios, servers } = options
  const small = Math.min(C_SMALL, fleetSize)
  const created = [
    { what: `the fleet of ${fmt(fleetSize)}`, count: fleetSize },
    { what: `C's three fleets of ${small}`, count: scenarios.has('C') ? 3 * small : 0 },
    // Created at the start of C, dropped at its end.
    { what: 'C\'s bare CREATE DATABASE', count: scenarios.has('C') ? Math.min(C_FLOOR, fleetSize) : 0 },
    // On one server C also creates the whole fleet again without the template.
    { what: `C's fleet of ${fmt(fleetSize)} without the template`, count: scenarios.has('C') && servers === 1 ? fleetSize : 0 },
    { what: "D's 6 new schools", count: scenarios.has('D') ? 6 : 0 }
  ].filter((part) => part.count > 0)
  const databases = created.reduce((sum, part) => sum + part.count, 0)
  // G's round-robin, direct, warms every school in each of its API processes.
  const warm = Math.max(scenarios.has('E') ? Math.min(2_000, fleetSize) : 0, scenarios.has('H') ? Math.min(H_ACTIVE, fleetSize) : 0,
    scenarios.has('G') ? SCALE_OUT_PROCESSES * fleetSize : 0, scenarios.has('B') ? 200 : 0)
  const apis = scenarios.has('G') ? SCALE_OUT_PROCESSES : 1
  const diskMB = databases * SCHOOL_DATABASE_MB + servers * SERVER_DISK_MB
  const memoryMB = servers * SERVER_MEMORY_MB + (warm > 0 ? warm * WARM_BACKEND_MB + apis * API_MEMORY_MB : 0)
  return {
    databases,
    diskMB,
    memoryMB,
    parts: [
      `disk: ${created.map((part) => `${part.what}`).join(' + ')} = ${fmt(databases)} school databases × ${SCHOOL_DATABASE_MB} MB` +
        ` + ${servers} server(s) × ${gb(SERVER_DISK_MB)} of WAL = ${gb(diskMB)}`,
      `memory: ${servers} server(s) × ${SERVER_MEMORY_MB} MB` +
        (warm > 0 ? ` + ${fmt(warm)} warm school backends × ${WARM_BACKEND_MB} MB + ${apis > 1 ? `${apis} API processes × ` : 'the API '}${API_MEMORY_MB} MB` : '') +
        ` = ${gb(memoryMB)}`
    ]
  }
}

/** Decimal units throughout: MB and GB of 10^6 and 10^9 bytes, as disks are sold and df -H shows. */
export const gb = (mb: number): string => `${fmt(mb / 1000, 1)} GB`

/** One line refusing the run when `freeMB` cannot hold what it needs; null when it can. */
export function diskRefusal (needs: Needs, freeMB: number, where: string): string | null {
  if (freeMB >= needs.diskMB) return null
  return `Refusing to start: this run needs about ${gb(needs.diskMB)} of disk for ${where}, and only ${gb(freeMB)} is free there ` +
    '(fewer --schools, or BENCH_PG_DIR on a larger disk).'
}
