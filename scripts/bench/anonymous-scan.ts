/*
 * Scenario F of npm run bench: anonymous traffic against a working school
 * (issue 15).
 *
 *   Scan        staff load on one school (closed loop) alone, under a control
 *               scan of GET /health, and under an anonymous scan of every
 *               school's public page, both at a fixed rate (open loop:
 *               autocannon's overallRate), side by side in rounds. Prints the
 *               victim's req/s under each scan as a ratio to its run alone,
 *               and the new school backends per second the scan caused.
 *   Monday      public reads Zipf-spread over every school, each with a
 *               published week: req/s, p50, p99.
 *
 * The service under test runs with the default pool budget, as in the issue.
 */
import autocannon from 'autocannon'
import type { Knex } from 'knex'
import { openCatalog } from '../../src/catalog/catalog.js'
import { runConcurrently } from '../../src/fleet/concurrency.js'
import { formatTable } from '../../src/fleet/table.js'
import { publicCopies } from '../../src/lunch/public-menus.js'
import { lunchWeeks } from '../../src/lunch/repository.js'
import { createKnex, databaseUrl } from '../../src/postgres/connection.js'
import type { Bench } from './context.js'
import { WEEK_OF } from './fleet.js'
import { load, type LoadResult } from './load.js'
import { metrics, WEEK_PATH } from './measure.js'
import { seededRandom, zipf } from './random.js'
import { fmt, median, say } from './report.js'

type Phase = 'alone' | 'control' | 'scan'
const PHASES: Phase[] = ['alone', 'control', 'scan']

interface PhaseRun {
  victim: LoadResult
  /** The victim's first seconds of the phase, not measured. */
  warmUp: LoadResult
  scan: ScanRun | null
  /** New connections to school databases per second while measured. */
  backendsPerSecond: number
}

/**
 * One round: the victim alone, under a control scan of GET /health (the
 * cost of the rate itself on this machine and harness), and under the scan.
 */
type Round = Record<Phase, PhaseRun>

export interface AnonymousScanResult {
  rounds: Round[]
  /** Median over rounds of the victim under scan / alone. */
  ratio: number
  /** The same under the control scan. */
  controlRatio: number
  scanBackendsPerSecond: number
  monday: LoadResult & { hitRatio: number, backendsPerSecond: number, cold: LoadResult }
}

interface ScanRun { requests: number, rps: number, p99: number, statuses: Record<string, number> }

/** The attacker: a fixed rate, whatever the answers cost. */
const SCAN_RATE = 100
// Enough connections that a slow answer does not lower the rate: 2 requests a second each.
const SCAN_CONNECTIONS = 50
const WARM_UP_SECONDS = 3
const VICTIM_TARGET = 0.85
const DAY_MS = 86_400_000

/** Runs scenario F on the bench's fleet (every school with a published week of WEEK_OF) and prints its tables. */
export async function anonymousScan (bench: Bench): Promise<AnonymousScanResult> {
  const { duration, connections } = bench.options
  const warmUp = Math.min(WARM_UP_SECONDS, duration)
  say(`Copying the published week of ${bench.fleetSize} schools to the catalog's public copies, 8 schools at a time…`)
  const seeding = Date.now()
  await seedPublicCopies(bench)
  say(`Copied in ${fmt((Date.now() - seeding) / 1000, 1)} s (each school: a connection, its published weeks read, the copy written, as the repairer does).`)
  const service = await bench.startService({ PUBLIC_RATE_LIMIT_MAX: '0' })
  try {
    const victimToken = bench.tokenFor(bench.slug(1))
    const victim = (): { path: string, headers: Record<string, string> } => ({ path: WEEK_PATH, headers: { authorization: `Bearer ${victimToken}` } })
    const victimLoad = async (seconds: number): Promise<LoadResult> =>
      await load({ url: service.url, connections, durationSeconds: seconds, next: victim })

    let scanned = 0
    const scanPath = publicScanPaths(bench)
    /** The victim alone, or under a scan; backends counted over the measured part only. */
    const measure = async (phase: Phase): Promise<PhaseRun> => {
      const scan = phase === 'alone' ? null : startScan(service.url, phase === 'control' ? () => '/health' : () => scanPath(scanned++), warmUp + duration + 1)
      const warmUpRun = await victimLoad(warmUp)
      const opened = await schoolConnectionsOpened(service.url)
      const victimRun = await victimLoad(duration)
      const backendsPerSecond = (await schoolConnectionsOpened(service.url) - opened) / duration
      return { victim: victimRun, warmUp: warmUpRun, scan: await scan?.stop() ?? null, backendsPerSecond }
    }
    await victimLoad(warmUp) // the fresh process's JIT and pool, before round 1
    const rounds: Round[] = []
    for (let round = 0; round < bench.options.rounds; round++) {
      // The order turns every round, so a drift of the machine favours no phase.
      const order = PHASES.map((_, i) => PHASES[(i + round) % PHASES.length] as Phase)
      const runs: Partial<Round> = {}
      for (const phase of order) runs[phase] = await measure(phase)
      rounds.push(runs as Round)
    }
    const ratio = median(rounds.map((r) => r.scan.victim.rps / r.alone.victim.rps))
    const controlRatio = median(rounds.map((r) => r.control.victim.rps / r.alone.victim.rps))
    const scanBackendsPerSecond = median(rounds.map((r) => Math.max(0, r.scan.backendsPerSecond - r.alone.backendsPerSecond)))
    printScan(rounds, { ratio, controlRatio, scanBackendsPerSecond, warmUp })

    const monday = await mondayMorning(service.url, bench, warmUp)
    say(formatTable(['Monday morning', 'value'], [
      ['public reads, Zipf s = 1.1 over schools', fmt(bench.fleetSize)],
      ['req/s', fmt(monday.rps)],
      ['p50 / p99 ms', `${monday.p50} / ${monday.p99}`],
      ['answered from the process cache', `${(monday.hitRatio * 100).toFixed(1)} %`],
      ['new school backends per second', fmt(monday.backendsPerSecond, 1)],
      ['errors (incl. non-2xx)', String(monday.errors + monday.non2xx)]
    ]))
    say(`First ${warmUp} s, cache cold (not measured): ${fmt(monday.cold.rps)} req/s, p99 ${monday.cold.p99} ms, ${monday.cold.errors + monday.cold.non2xx} errors.`)
    return { rounds, ratio, controlRatio, scanBackendsPerSecond, monday }
  } finally {
    await service.stop()
  }
}

function printScan (rounds: Round[], figures: { ratio: number, controlRatio: number, scanBackendsPerSecond: number, warmUp: number }): void {
  const answers = (scan: ScanRun | null): string => Object.entries(scan?.statuses ?? {}).map(([code, n]) => `${code}: ${n}`).join(', ')
  say(formatTable(['round', 'victim req/s: alone / control / scan', 'ratio: control / scan', 'victim p99 ms: alone / control / scan', 'scan req/s', 'scan answers', 'scan p99 ms', 'backends/s: alone / scan'],
    rounds.map((r, i) => [
      String(i + 1),
      `${fmt(r.alone.victim.rps)} / ${fmt(r.control.victim.rps)} / ${fmt(r.scan.victim.rps)}`,
      `${(r.control.victim.rps / r.alone.victim.rps).toFixed(2)} / ${(r.scan.victim.rps / r.alone.victim.rps).toFixed(2)}`,
      `${r.alone.victim.p99} / ${r.control.victim.p99} / ${r.scan.victim.p99}`,
      fmt(r.scan.scan?.rps ?? 0), answers(r.scan.scan), String(r.scan.scan?.p99 ?? '-'),
      `${fmt(r.alone.backendsPerSecond, 1)} / ${fmt(r.scan.backendsPerSecond, 1)}`
    ])))
  say(`Warm-ups (${figures.warmUp} s each, not measured), victim req/s: alone ${rounds.map((r) => fmt(r.alone.warmUp.rps)).join(', ')}; ` +
    `control ${rounds.map((r) => fmt(r.control.warmUp.rps)).join(', ')}; scan ${rounds.map((r) => fmt(r.scan.warmUp.rps)).join(', ')}.`)
  say(formatTable(['measure', 'value', 'target'], [
    ['victim under scan / alone (median of rounds)', figures.ratio.toFixed(2), `>= ${VICTIM_TARGET} ${figures.ratio >= VICTIM_TARGET ? 'met' : 'MISSED'}`],
    ['victim under control scan of /health / alone', figures.controlRatio.toFixed(2), ''],
    ['new school backends per second caused by the scan', fmt(figures.scanBackendsPerSecond, 1), `0 ${figures.scanBackendsPerSecond === 0 ? 'met' : 'MISSED'}`]
  ]))
  say('Control: the same rate of GET /health, the cost of the rate itself on this machine. Backends: connections the service opened to school databases (tenant pools and public copy repairs), from /metrics.')
}

/** Public reads of the published week, Zipf over the fleet: a Monday morning of parents. */
async function mondayMorning (url: string, bench: Bench, warmUp: number): Promise<LoadResult & { hitRatio: number, backendsPerSecond: number, cold: LoadResult }> {
  const { duration, connections } = bench.options
  const pick = zipf(bench.fleetSize, 1.1, seededRandom(7))
  const next = (): { path: string, headers: Record<string, string> } => ({ path: `/api/public/schools/${bench.slug(pick() + 1)}/lunch-weeks/${WEEK_OF}`, headers: {} })
  const cold = await load({ url, connections, durationSeconds: warmUp, next })
  const before = await metrics(url)
  const result = await load({ url, connections, durationSeconds: duration, next })
  const after = await metrics(url)
  const delta = (name: string): number => (after[name] ?? 0) - (before[name] ?? 0)
  const reads = delta('public_cache_hits_total') + delta('public_cache_misses_total')
  return {
    ...result,
    cold,
    hitRatio: reads === 0 ? 0 : delta('public_cache_hits_total') / reads,
    backendsPerSecond: (delta('tenant_connections_opened_total') + delta('public_school_connections_opened_total')) / duration
  }
}

/**
 * The attacker's requests: one school after another, each time a week no
 * school has published, so no answer is ever a repeat.
 */
function publicScanPaths (bench: Bench): (n: number) => string {
  const schools = bench.fleetSize
  const now = new Date()
  const thisMonday = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - ((now.getUTCDay() + 6) % 7) * DAY_MS
  return (n) => {
    const school = (n % schools) + 1
    const week = 1 + (Math.floor(n / schools) % 100)
    return `/api/public/schools/${bench.slug(school)}/lunch-weeks/${new Date(thisMonday + week * 7 * DAY_MS).toISOString().slice(0, 10)}`
  }
}

/** An open-loop scan at SCAN_RATE until stopped (or `seconds` pass). */
function startScan (url: string, next: () => string, seconds: number): { stop: () => Promise<ScanRun> } {
  let instance: autocannon.Instance | undefined
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon({
      url,
      connections: SCAN_CONNECTIONS,
      overallRate: SCAN_RATE,
      duration: seconds,
      requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: next() }) }]
    }, (error, result) => { if (error !== null && error !== undefined) reject(error); else resolve(result) })
  })
  return {
    stop: async () => {
      instance?.stop()
      const result = await done
      const statuses = Object.fromEntries(Object.entries(result.statusCodeStats as unknown as Record<string, { count: number }>).map(([code, s]) => [code, s.count]))
      if (result.errors + result.timeouts > 0) statuses.errors = result.errors + result.timeouts
      return { requests: result.requests.total, rps: result.requests.average, p99: result.latency.p99, statuses }
    }
  }
}

/** Every school's published week in the catalog, the way the repairer copies it. */
async function seedPublicCopies (bench: Bench): Promise<void> {
  const catalog: Knex = openCatalog(bench.mainCatalog, 8)
  try {
    // The catalog's own database_name, so no name is worked out from the slug.
    const missing = await catalog('schools as s').leftJoin('public_lunch_weeks as w', 'w.school_id', 's.id')
      .whereNull('w.school_id').whereLike('s.slug', `${bench.options.prefix}-%`).select('s.id', 's.database_name') as Array<{ id: string, database_name: string }>
    const copies = publicCopies(catalog)
    await catalog('public_lunch_pending').insert(missing.map(({ id }) => ({ school_id: id, created_at: '-infinity' })))
    await runConcurrently(missing, 8, async (school) => {
      const db = createKnex(databaseUrl(bench.serverUrl, school.database_name), { max: 1, applicationName: 'school-lunch:bench' })
      try {
        await copies.copySchool(Number(school.id), () => db, async (tenant) => await lunchWeeks(tenant).listPublished(), 0)
      } finally {
        await db.destroy()
      }
    })
  } finally {
    await catalog.destroy()
  }
}

async function schoolConnectionsOpened (url: string): Promise<number> {
  const figures = await metrics(url)
  return (figures.tenant_connections_opened_total ?? 0) + (figures.public_school_connections_opened_total ?? 0)
}
