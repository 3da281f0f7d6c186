import path from 'node:path'
import type { Knex } from 'knex'
import { projectRoot } from '../../../src/config.js'
import { formatTable } from '../../../src/fleet/table.js'
import { missingDaemons, pgbouncerSetting, startHaProxy, startPgBouncer, type PgBouncer } from '../../deploy/daemons.js'
import type { Bench } from '../context.js'
import { runMigrate } from '../fleet.js'
import { load, type LoadResult } from '../load.js'
import { WEEK_PATH, type NextRequest } from '../measure.js'
import { processMemory, summedPss } from '../memory.js'
import { seededRandom, zipf } from '../random.js'
import { fmt, say } from '../report.js'
import type { Scenario } from '../scenario.js'

/** API processes behind HAProxy in every topology of G. */
export const SCALE_OUT_PROCESSES = 3

interface Topology {
  label: string
  /** The shipped configuration (school affinity), or its balance line made round-robin. */
  affinity: boolean
  pooled: boolean
}

const TOPOLOGIES: Topology[] = [
  { label: 'round-robin, direct', affinity: false, pooled: false },
  { label: 'round-robin, PgBouncer', affinity: false, pooled: true },
  { label: 'affinity, direct', affinity: true, pooled: false },
  { label: 'affinity, PgBouncer', affinity: true, pooled: true }
]

type Traffic = 'zipf' | 'round-robin'

interface Backends { school: number, auth: number }

interface Point {
  topology: string
  traffic: Traffic
  warmup: { seconds: number, requests: number, rps: number, newBackends: number }
  result: LoadResult
  /**
   * Schools asked for since the processes started, warm-up included: a
   * school's pool, or PgBouncer's, outlives the warm-up, so the peak counts
   * backends of schools only the warm-up asked for.
   */
  active: number
  peak: Backends
  backendsPssMiB: number | null
  apiPssMiB: number | null
  apiRssMiB: number | null
  newBackendsPerSecond: number
}

/**
 * G: three API processes behind deploy/haproxy.cfg over the whole fleet,
 * each school active; four topologies side by side, each on fresh
 * processes: round-robin (the balance line rewritten) or affinity (the
 * file as shipped), straight to PostgreSQL or through deploy/pgbouncer.ini.
 * Each under Zipf traffic and under every school in turn.
 */
export const scaleOut: Scenario = {
  name: 'G',
  needsFleet: true,
  heading: (bench) => `G. Scale-out: ${SCALE_OUT_PROCESSES} API processes behind HAProxy, ${bench.fleetSize} schools; round-robin or school affinity, direct or through PgBouncer`,
  async run (bench) {
    const missing = missingDaemons()
    if (missing !== null) {
      say(`G skipped: ${missing}.`)
      return { skipped: missing }
    }
    const pgbouncer = await startPgBouncer(path.join(projectRoot, '.data/bench-pgbouncer'), Number(new URL(bench.serverUrl).port), bench.roleSecret)
    try {
      // The pooler's role may log in only where migrate knows of a pooler.
      const migrated = await runMigrate(bench.envFor(bench.mainCatalog, { TENANT_POOLERS: `default=${pgbouncer.url}` }))
      if (migrated.code !== 0) throw new Error(`migrate with the pooler failed: ${migrated.summary}`)
      const points: Point[] = []
      for (const traffic of ['zipf', 'round-robin'] as const) {
        for (const topology of TOPOLOGIES) points.push(await measurePoint(bench, topology, traffic, pgbouncer))
        printTable(bench, points.filter((p) => p.traffic === traffic), traffic)
      }
      return { points, poolSize: POOL_SIZE }
    } finally {
      await pgbouncer.remove()
    }
  }
}

// Backends per school through the pooler.
const POOL_SIZE = pgbouncerSetting('default_pool_size')

async function measurePoint (bench: Bench, topology: Topology, traffic: Traffic, pgbouncer: PgBouncer): Promise<Point> {
  // The pooler runs only for its own topologies, started afresh: its server
  // connections of the last point would idle on for a minute and be counted.
  await pgbouncer.stop()
  if (topology.pooled) await pgbouncer.start()
  const env = { TENANT_CONNECTIONS_MAX: String(bench.fleetSize + 20), ...(topology.pooled ? { TENANT_POOLERS: `default=${pgbouncer.url}` } : {}) }
  const services = await Promise.all(Array.from({ length: SCALE_OUT_PROCESSES }, async () => await bench.startService(env)))
  const apis = services.map((s) => s.url.replace('http://', '')) as [string, string, string]
  const haproxy = await startHaProxy({ apis, schoolClaimPath: 'school', roundRobin: !topology.affinity })
  try {
    const asked = new Set<number>()
    const next = schoolTraffic(bench, traffic, asked)
    const run = async (seconds: number): Promise<LoadResult> =>
      await load({ url: haproxy.address, connections: bench.options.connections, durationSeconds: seconds, next })
    const warmup = await warmUp(bench, run)
    const sessionsBefore = await sessions(bench)
    const sampler = sampleBackends(bench.admin, bench.options.prefix)
    const started = Date.now()
    const result = await run(bench.options.duration)
    const seconds = (Date.now() - started) / 1000
    const peak = await sampler.stop()
    const newBackends = await sessions(bench) - sessionsBefore
    const backends = await backendPss(bench.admin, bench.options.prefix)
    const api = services.map((s) => processMemory(s.pid))
    const sum = (field: 'pss' | 'rss'): number | null => api.every((m) => m !== null) ? api.reduce((total, m) => total + (m?.[field] ?? 0), 0) : null
    return {
      topology: topology.label,
      traffic,
      warmup,
      result,
      active: asked.size,
      peak,
      backendsPssMiB: backends,
      apiPssMiB: sum('pss'),
      apiRssMiB: sum('rss'),
      newBackendsPerSecond: newBackends / seconds
    }
  } finally {
    await haproxy.stop()
    await Promise.all(services.map(async (s) => await s.stop()))
  }
}

/** Zipf (s = 1.1) over the fleet, or every school in turn; each request with its school's token. */
function schoolTraffic (bench: Bench, traffic: Traffic, asked: Set<number>): NextRequest {
  const pick = traffic === 'zipf' ? zipf(bench.fleetSize, 1.1, seededRandom(7)) : ((turn) => () => turn++ % bench.fleetSize)(0)
  return () => {
    const school = pick() + 1
    asked.add(school)
    return { path: WEEK_PATH, headers: { authorization: `Bearer ${bench.tokenFor(bench.slug(school))}` } }
  }
}

/**
 * Load until a second of it opens no more than a handful of backends (the
 * steady state), for at most three runs' time; printed apart from it.
 */
async function warmUp (bench: Bench, run: (seconds: number) => Promise<LoadResult>): Promise<Point['warmup']> {
  const started = Date.now()
  const first = await sessions(bench)
  let requests = (await run(2)).requests
  while (Date.now() - started < 3 * bench.options.duration * 1000) {
    const before = await sessions(bench)
    requests += (await run(1)).requests
    if (await sessions(bench) - before <= 2) break
  }
  const seconds = (Date.now() - started) / 1000
  return { seconds, requests, rps: requests / seconds, newBackends: await sessions(bench) - first }
}

/** Sessions ever opened on the fleet's school databases (PostgreSQL 14+). */
async function sessions (bench: Bench): Promise<number> {
  const { rows } = await bench.admin.raw<{ rows: Array<{ n: string | null }> }>(
    "SELECT sum(sessions) AS n FROM pg_stat_database WHERE datname LIKE ? ESCAPE '\\'", [schoolDatabases(bench.options.prefix)])
  return Number(rows[0]?.n ?? 0)
}

const schoolDatabases = (prefix: string): string => `${prefix.replaceAll('_', '\\_')}\\_0%`

const BACKENDS_SQL = `SELECT count(*) FILTER (WHERE usename LIKE 'school\\_%') AS school,
  count(*) FILTER (WHERE usename = 'tenant_pooler') AS auth
  FROM pg_stat_activity WHERE datname LIKE ? ESCAPE '\\'`

/** Backends on school databases, every 100 ms: the schools' own, and the pooler's password lookups. */
function sampleBackends (admin: Knex, prefix: string): { stop: () => Promise<Backends> } {
  const peak: Backends = { school: 0, auth: 0 }
  const stopped = new AbortController()
  const loop = (async () => {
    while (!stopped.signal.aborted) {
      const { rows } = await admin.raw<{ rows: Array<{ school: string, auth: string }> }>(BACKENDS_SQL, [schoolDatabases(prefix)])
      peak.school = Math.max(peak.school, Number(rows[0]?.school ?? 0))
      peak.auth = Math.max(peak.auth, Number(rows[0]?.auth ?? 0))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  return { stop: async () => { stopped.abort(); await loop; return peak } }
}

/** Summed PSS of the backends on school databases now, MiB; null where none can be read. */
async function backendPss (admin: Knex, prefix: string): Promise<number | null> {
  const { rows } = await admin.raw<{ rows: Array<{ pid: number }> }>("SELECT pid FROM pg_stat_activity WHERE datname LIKE ? ESCAPE '\\'", [schoolDatabases(prefix)])
  return summedPss(rows.map((row) => row.pid))
}

function printTable (bench: Bench, points: Point[], traffic: Traffic): void {
  const reference = points.find((p) => p.topology === 'round-robin, direct')?.result.rps ?? 0
  const mib = (value: number | null): string => value === null ? '-' : fmt(value)
  say(`\n${traffic === 'zipf' ? 'Zipf traffic (s = 1.1)' : 'Every school in turn'} over ${bench.fleetSize} schools, ${bench.options.connections} connections, ${bench.options.duration} s measured after the warm-up:`)
  say(formatTable(['topology', 'warm-up s (req/s)', 'req/s', 'vs round-robin direct', 'p50 / p99 ms', 'errors', 'schools asked, warm-up included',
    'peak school backends (+ lookups)', 'their PSS MiB', 'API PSS (RSS) MiB', 'new backends/s'], points.map((p) => [
    p.topology,
    `${p.warmup.seconds.toFixed(0)} (${fmt(p.warmup.rps)})`,
    fmt(p.result.rps),
    reference === 0 ? '-' : (p.result.rps / reference).toFixed(2),
    `${p.result.p50} / ${p.result.p99}`,
    String(p.result.errors + p.result.non2xx),
    String(p.active),
    `${p.peak.school} (+ ${p.peak.auth})`,
    mib(p.backendsPssMiB),
    `${mib(p.apiPssMiB)} (${mib(p.apiRssMiB)})`,
    fmt(p.newBackendsPerSecond, 1)
  ])))
  const find = (label: string): Point | undefined => points.find((p) => p.topology === label)
  const affinity = find('affinity, direct')
  const pooled = points.filter((p) => p.topology.endsWith('PgBouncer'))
  say(formatTable(['target', 'value', 'met'], [
    ['affinity, direct: peak backends <= 1.1 x schools asked',
      affinity === undefined ? '-' : `${affinity.peak.school} vs ${fmt(1.1 * affinity.active)}`, affinity === undefined ? '-' : yes(affinity.peak.school <= 1.1 * affinity.active)],
    ['affinity, direct: req/s >= 1.2 x round-robin direct',
      affinity === undefined || reference === 0 ? '-' : `${(affinity.result.rps / reference).toFixed(2)}x`, affinity === undefined ? '-' : yes(affinity.result.rps >= 1.2 * reference)],
    ...pooled.map((p) => [`${p.topology}: school backends <= 1.1 x schools x ${POOL_SIZE}`, `${p.peak.school} vs ${fmt(1.1 * p.active * POOL_SIZE)}`, yes(p.peak.school <= 1.1 * p.active * POOL_SIZE)]),
    ['errors, every topology', String(points.reduce((n, p) => n + p.result.errors + p.result.non2xx, 0)), yes(points.every((p) => p.result.errors + p.result.non2xx === 0))]
  ]))
}

const yes = (met: boolean): string => met ? 'yes' : 'NO'
