import { setTimeout as sleep } from 'node:timers/promises'
import { formatTable } from '../../../src/fleet/table.js'
import { databaseOf } from '../../../src/postgres/connection.js'
import type { Bench } from '../context.js'
import { load, type LoadResult } from '../load.js'
import { metrics, WEEK_PATH, type Measured, type NextRequest } from '../measure.js'
import { processMemory } from '../memory.js'
import type { RunningServer } from '../processes.js'
import { fmt, say } from '../report.js'
import { H_ACTIVE } from '../resources.js'
import type { Scenario } from '../scenario.js'

/** What the service holds: its memory from /proc, its caches and heap from /bench/state (serve.ts). */
interface Snapshot {
  rssMiB: number | null
  pssMiB: number | null
  heapUsedMiB: number
  caches: { schools: number, pools: number, connections: number, publicAnswers: number }
}

interface Resync {
  /** From pg_terminate_backend on the listener to its new LISTEN connection. */
  reconnectMs: number | null
  /** From the reconnect until every active school was read from the catalog again. */
  rereadMs: number | null
  /** Catalog lookups from the kill to the end of the run. */
  lookups: number
  /** The longest request that ended between the kill and a second after the re-read. */
  longestMs: number
  /** Responses that were not 200 in that window. */
  failures: number
  run: LoadResult
  /** The same load and length with no resync, just before. */
  control: LoadResult
}

/**
 * H: the API with the whole fleet known to the catalog and H_ACTIVE schools
 * in use, round robin, on a budget that holds them: its memory (RSS and
 * PSS) idle and warm, the sizes of its caches, and a catalog resync (the
 * LISTEN connection's backend terminated) under that load, with the
 * longest request while the cache fills again.
 */
export const apiAtScale: Scenario = {
  name: 'H',
  needsFleet: true,
  heading: (bench) => `H. The API at scale: ${fmt(bench.fleetSize)} schools known, ${fmt(activeOf(bench))} active (round robin), on ${bench.servers.length} server(s)`,
  async run (bench) {
    const active = activeOf(bench)
    // Each server's share of the active schools, and room for the busiest to grow.
    const budget = Math.ceil(active / bench.servers.length) + 50
    const service = await bench.startService({ TENANT_CONNECTIONS_MAX: String(budget) })
    try {
      const idle = await snapshot(service)
      let turn = 0
      const spread: NextRequest = () => ({ path: WEEK_PATH, headers: { authorization: `Bearer ${bench.tokenFor(bench.slug((turn++ % active) + 1))}` } })
      const steady = await bench.measure(service.url, spread, { service: true, pid: service.pid, settle: true })
      const warm = await snapshot(service)
      const resync = await measureResync(bench, service, spread, active)
      printResults(bench, { active, budget, idle, warm, steady, resync })
      return { active, budget, idle, warm, steady, resync }
    } finally {
      await service.stop()
    }
  }
}

const activeOf = (bench: Bench): number => Math.min(H_ACTIVE, bench.fleetSize)

async function snapshot (service: RunningServer): Promise<Snapshot> {
  const memory = processMemory(service.pid)
  const state = await (await fetch(`${service.url}/bench/state`)).json() as { caches: Snapshot['caches'], memory: { heapUsed: number } }
  return { rssMiB: memory?.rss ?? null, pssMiB: memory?.pss ?? null, heapUsedMiB: state.memory.heapUsed / 2 ** 20, caches: state.caches }
}

/**
 * A control run, then the same load during which the listener's backend is
 * terminated a third of the way in: the listener reconnects and clears the
 * school cache (changes sent while it was away are lost), so every active
 * school is read from the catalog again while requests keep coming.
 */
async function measureResync (bench: Bench, service: RunningServer, next: NextRequest, active: number): Promise<Resync> {
  const seconds = Math.max(6, bench.options.duration)
  const connections = bench.options.connections
  const control = await load({ url: service.url, connections, durationSeconds: seconds, next })
  const responses: Array<{ at: number, ms: number, status: number }> = []
  const running = load({ url: service.url, connections, durationSeconds: seconds, next, onResponse: (status, ms) => { responses.push({ at: performance.now(), ms, status }) } })
  await sleep((seconds * 1000) / 3)
  const before = (await metrics(service.url)).catalog_cache_misses_total ?? 0
  const killedAt = performance.now()
  const killedAtDate = new Date()
  await bench.admin.raw("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'school-lunch:listen' AND datname = ?", [databaseOf(bench.mainCatalog)])
  const reconnectedAt = await until(seconds * 1000, async () => {
    const { rows } = await bench.admin.raw<{ rows: unknown[] }>(
      "SELECT 1 FROM pg_stat_activity WHERE application_name = 'school-lunch:listen' AND datname = ? AND backend_start > ?", [databaseOf(bench.mainCatalog), killedAtDate])
    return rows.length > 0
  })
  const rereadAt = await until(seconds * 1000, async () => ((await metrics(service.url)).catalog_cache_misses_total ?? 0) - before >= active)
  const run = await running
  const lookups = ((await metrics(service.url)).catalog_cache_misses_total ?? 0) - before
  const windowEnd = (rereadAt ?? performance.now()) + 1_000
  const inWindow = responses.filter((r) => r.at >= killedAt && r.at <= windowEnd)
  return {
    reconnectMs: reconnectedAt === null ? null : reconnectedAt - killedAt,
    rereadMs: rereadAt === null || reconnectedAt === null ? null : rereadAt - reconnectedAt,
    lookups,
    longestMs: Math.max(0, ...inWindow.map((r) => r.ms)),
    failures: inWindow.filter((r) => r.status !== 200).length,
    run,
    control
  }
}

/** Polls `check` every 10 ms: the moment it first held (performance.now()), or null after `timeoutMs`. */
async function until (timeoutMs: number, check: () => Promise<boolean>): Promise<number | null> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (await check()) return performance.now()
    await sleep(10)
  }
  return null
}

interface Results {
  active: number
  budget: number
  idle: Snapshot
  warm: Snapshot
  steady: Measured
  resync: Resync
}

function printResults (bench: Bench, { active, budget, idle, warm, steady, resync }: Results): void {
  const mib = (value: number | null): string => value === null ? 'n/a' : `${fmt(value)} MiB`
  const ms = (value: number | null): string => value === null ? 'not seen' : `${fmt(value)} ms`
  const caches = (s: Snapshot): string => `${fmt(s.caches.schools)} / ${fmt(s.caches.pools)} / ${fmt(s.caches.connections)} / ${fmt(s.caches.publicAnswers)}`
  const { run, control } = resync
  say(formatTable(['measure', 'value'], [
    ['schools known / active / servers', `${fmt(bench.fleetSize)} / ${fmt(active)} / ${bench.servers.length}`],
    ['TENANT_CONNECTIONS_MAX (per server)', fmt(budget)],
    ['warm-up until a second opens no connection', `${fmt(steady.warmup.seconds, 1)} s (${fmt(steady.warmup.opened ?? 0)} connections)${steady.warmup.settled ? '' : ', not settled'}`],
    ['steady: req/s, p50 / p99 / max ms', `${fmt(steady.rps)}, ${steady.p50} / ${steady.p99} / ${steady.max}`],
    ['API RSS / PSS, started, no school used yet', `${mib(idle.rssMiB)} / ${mib(idle.pssMiB)}`],
    [`API RSS / PSS, ${fmt(active)} schools warm`, `${mib(warm.rssMiB)} / ${mib(warm.pssMiB)}`],
    ['V8 heap used, started / warm', `${mib(idle.heapUsedMiB)} / ${mib(warm.heapUsedMiB)}`],
    ['caches, started: schools / pools / connections / public answers', caches(idle)],
    ['caches, warm', caches(warm)],
    ['resync: listener back after its backend was terminated', ms(resync.reconnectMs)],
    ['resync: every active school read again from the catalog within', `${ms(resync.rereadMs)} of the reconnect (${fmt(resync.lookups)} lookups)`],
    ['longest request, from the kill to 1 s after the re-read', `${fmt(resync.longestMs)} ms (${resync.failures} not 200)`],
    ['the run with the resync: req/s, p99 / max ms, errors', `${fmt(run.rps)}, ${run.p99} / ${run.max}, ${run.errors + run.non2xx}`],
    ['the run before it, no resync: req/s, p99 / max ms, errors', `${fmt(control.rps)}, ${control.p99} / ${control.max}, ${control.errors + control.non2xx}`]
  ]))
}
