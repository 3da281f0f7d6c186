import { formatTable } from '../../../src/fleet/table.js'
import { backendSpread, type SpreadRun } from '../backend-spread.js'
import { growthChart, type GrowthCurve } from '../chart.js'
import { connectRate } from '../connect-rate.js'
import type { CpuPerRequest } from '../cpu.js'
import { CHURN_BUDGET, type Bench } from '../context.js'
import { WEEK_PATH, type Measured } from '../measure.js'
import { backendMemory, processMemory } from '../memory.js'
import { average, fmt, growthChartName, machine, say, writeResult } from '../report.js'
import type { Scenario } from '../scenario.js'

interface Point {
  active: number
  budget: number
  /** The active schools, measured twice: first, and again last. */
  runs: Measured[]
  /** School 1 alone on the same service, twice between those: the reference of this point. */
  alone: Measured[]
  backends: number
  backendsPssMiB: number | null
  apiPssMiB: number | null
  stopMs: number
  stopCode: number | null
}

interface Curve {
  label: string
  budget: (active: number) => number
  /** Only these numbers of active schools; every size when absent. */
  only?: (sizes: number[]) => number[]
  /** Settings of the service beyond its budget. */
  env?: Record<string, string>
  /** Drawn on the growth chart. */
  chart: boolean
}

/** E: req/s as the active schools grow, under a budget that holds them and under a fixed one. */
export const growth: Scenario = {
  name: 'E',
  needsFleet: true,
  heading: () => `E. Growth: round robin over the active schools; a budget that holds them, and a fixed budget of ${CHURN_BUDGET}`,
  async run (bench) {
    const ceiling = await connectCeiling(bench)
    const sizes = [1, 10, 100, 1000, 2000].filter((n) => n <= bench.fleetSize)
    const curves: Curve[] = [
      { label: 'budget holds the active schools', budget: (active) => active + 20, chart: true },
      { label: `fixed budget of ${CHURN_BUDGET}`, budget: () => CHURN_BUDGET, chart: true },
      // The first curve's largest point with a school's pool held to one
      // connection, on both sides of the ratio: how the figures of the hand
      // measurement that led to the budget were taken.
      {
        label: 'budget holds the active schools, pools of one connection (TENANT_POOL_SIZE=1)',
        budget: (active) => active + 20,
        only: (all) => all.slice(-1),
        env: { TENANT_POOL_SIZE: '1' },
        chart: false
      }
    ]
    const results: Array<{ label: string, points: Point[], chart: boolean }> = []
    for (const curve of curves) {
      const points: Point[] = []
      for (const active of curve.only?.(sizes) ?? sizes) points.push(await measurePoint(bench, active, curve.budget(active), curve.env))
      results.push({ label: curve.label, points, chart: curve.chart })
      printCurve(curve.label, points, bench.options.duration)
    }
    const chart: GrowthCurve[] = results.filter((curve) => curve.chart).map(({ label, points }) => ({
      label,
      points: points.map((p) => ({ schools: p.active, rps: Math.round(mean(p.runs, 'rps')), p99: Math.round(mean(p.runs, 'p99')) }))
    }))
    const spread = await postgresAlone(bench)
    const { cpus, memoryGiB } = machine()
    const caption = `${cpus} cores, ${memoryGiB} GiB, ${new Date().toISOString().slice(0, 10)}; TENANT_POOL_SIZE 5`
    // growth.svg is tracked and shown by the docs: a smoke run must not
    // replace it with the figures of 20 schools and 2-second runs.
    writeResult(growthChartName(bench.options.quick), growthChart(chart, caption))
    return { ceiling, curves: results, spread }
  }
}

/**
 * How many new connections a second this machine opens, at several
 * concurrencies: what a cold school costs, and the basis of the default
 * TENANT_CONNECT_CONCURRENCY.
 */
async function connectCeiling (bench: Bench): Promise<Array<Awaited<ReturnType<typeof connectRate>>>> {
  const urls = Array.from({ length: Math.min(bench.fleetSize, 200) }, (_, i) => bench.schoolUrl(i + 1))
  const rates = []
  for (const concurrency of [1, 2, 4, 8, 16]) rates.push(await connectRate(urls, concurrency, 3))
  say('New connections a second on this machine (connect, SELECT 1, close, as a school role):')
  say(formatTable(['at once', 'per second', 'p50 ms', 'errors'], rates.map((r) => [String(r.concurrency), fmt(r.perSecond), String(r.p50), String(r.errors)])))
  return rates
}

/** The first curve's work on PostgreSQL alone, over few backends and over many. */
async function postgresAlone (bench: Bench): Promise<SpreadRun[]> {
  const inFlight = bench.options.connections
  const runs = await backendSpread(bench.schoolUrl, bench.fleetSize, inFlight, bench.options.duration)
  const column = (run: SpreadRun, field: 'perSecond' | 'emptyPerSecond'): string[] => {
    const reference = average(runs[0]?.[field] ?? [])
    return [`${fmt(average(run[field]))} (${run[field].map((value) => fmt(value)).join(', ')})`, (average(run[field]) / reference).toFixed(2)]
  }
  say(`\nPostgreSQL alone, no service: ${inFlight} queries in flight, each backend in turn (order ABC CBA):`)
  say(formatTable(['backends', 'databases', 'week query/s (two runs)', 'vs the first', 'SELECT 1/s (two runs)', 'vs the first'], runs.map((run) => [
    String(run.backends), String(run.databases), ...column(run, 'perSecond'), ...column(run, 'emptyPerSecond')
  ])))
  return runs
}

/**
 * One point: a fresh service, warmed up until a second of load opens no
 * connection (or, where the budget cannot hold the schools and it never
 * stops opening them, for as long as a run); then the active schools,
 * school 1 alone twice, and the active schools again (ABBA), so neither
 * side gains from coming later, when the process is warmer; then SIGTERM,
 * timed. The machine is shared: a reference taken minutes apart would
 * measure the neighbours as much as the schools.
 */
async function measurePoint (bench: Bench, active: number, budget: number, env: Record<string, string> = {}): Promise<Point> {
  const service = await bench.startService({ ...env, TENANT_CONNECTIONS_MAX: String(budget) })
  let turn = 0
  const spread = (): { path: string, headers: Record<string, string> } =>
    ({ path: WEEK_PATH, headers: { authorization: `Bearer ${bench.tokenFor(bench.slug((turn++ % active) + 1))}` } })
  const one = bench.tokenFor(bench.slug(1))
  const alone = (): { path: string, headers: Record<string, string> } => ({ path: WEEK_PATH, headers: { authorization: `Bearer ${one}` } })
  const counted = { service: true, pid: service.pid }
  const settled = { ...counted, settle: true }
  const warm = active > budget ? { ...counted, warmupSeconds: bench.options.duration } : settled
  const first = await bench.measure(service.url, spread, warm)
  const aloneRuns = [await bench.measure(service.url, alone, settled)]
  aloneRuns.push(await bench.measure(service.url, alone, settled))
  const last = await bench.measure(service.url, spread, warm)
  const backends = await backendMemory(bench.admin)
  const api = processMemory(service.pid)
  const stopped = await service.stop()
  return {
    active,
    budget,
    runs: [first, last],
    alone: aloneRuns,
    backends: backends.backends,
    backendsPssMiB: backends.pss,
    apiPssMiB: api?.pss ?? null,
    stopMs: Math.round(stopped.ms),
    stopCode: stopped.code
  }
}

const mean = (runs: Measured[], field: 'rps' | 'p99'): number => average(runs.map((run) => run[field]))

function printCurve (label: string, points: Point[], seconds: number): void {
  const mib = (value: number | null): string => value === null ? 'n/a' : fmt(value)
  say(`\n${label}:`)
  say(formatTable(
    ['active', 'budget', 'warm-up s (new conns)', 'req/s', 'p99 ms', '1 school', 'ratio', 'new conns/s', 'PG backends', 'their PSS MiB', 'API PSS MiB', 'SIGTERM to exit'],
    points.map((p) => [
      String(p.active),
      String(p.budget),
      `${fmt(p.runs[0]?.warmup.seconds ?? 0, 1)} (${p.runs[0]?.warmup.opened ?? '-'})${p.runs[0]?.warmup.settled === false ? ' *' : ''}`,
      fmt(mean(p.runs, 'rps')),
      fmt(mean(p.runs, 'p99')),
      fmt(mean(p.alone, 'rps')),
      (mean(p.runs, 'rps') / mean(p.alone, 'rps')).toFixed(2),
      fmt(p.runs.reduce((sum, run) => sum + (run.opened ?? 0), 0) / (seconds * p.runs.length), 1),
      String(p.backends),
      mib(p.backendsPssMiB),
      mib(p.apiPssMiB),
      `${fmt(p.stopMs)} ms, exit ${p.stopCode ?? 'signal'}`
    ])))
  say('req/s, p99: the mean of two runs; 1 school: school 1 alone on the same service, two runs between those; ratio: the first over the second.')
  if (points.some((p) => p.runs[0]?.warmup.settled === false)) say('* warm-up for a fixed time: with more schools than the budget holds, connections never stop opening.')
  printCpu(points)
}

/** Where each request's CPU time went, active schools beside school 1 alone: the service's share, and the rest's. */
function printCpu (points: Point[]): void {
  const perRequest = (runs: Measured[], part: keyof CpuPerRequest): number | null => {
    const values = runs.map((run) => run.cpu?.[part]).filter((value): value is number => value !== undefined)
    return values.length === 0 ? null : average(values)
  }
  const pair = (p: Point, part: keyof CpuPerRequest): string => {
    const [active, alone] = [perRequest(p.runs, part), perRequest(p.alone, part)]
    return active === null || alone === null ? 'n/a' : `${fmt(active)} / ${fmt(alone)}`
  }
  if (points.every((p) => perRequest(p.runs, 'machine') === null)) return
  say('CPU µs per request, active schools / school 1 alone (from /proc; "the rest" is PostgreSQL, the kernel and anything else on the machine):')
  say(formatTable(['active', 'service', 'of it in the kernel', 'load generator', 'the rest', 'whole machine'],
    points.map((p) => [String(p.active), pair(p, 'service'), pair(p, 'serviceKernel'), pair(p, 'load'), pair(p, 'rest'), pair(p, 'machine')])))
}
