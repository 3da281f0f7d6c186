import { formatTable } from '../../../src/fleet/table.js'
import { connectRate } from '../connect-rate.js'
import { CHURN_BUDGET } from '../context.js'
import { load } from '../load.js'
import { metrics, sampleConnections, WEEK_PATH, type NextRequest } from '../measure.js'
import { seededRandom, zipf } from '../random.js'
import { fmt, say } from '../report.js'
import type { Scenario } from '../scenario.js'

/**
 * B: the churn regime. Zipf traffic over more schools than the budget
 * holds, so some requests must open a connection. Judged against what this
 * machine can do at all: the baseline, or its rate of new connections
 * divided by the share of requests that need one, whichever is lower.
 */
export const scale: Scenario = {
  name: 'B',
  needsFleet: true,
  heading: (bench) => `B. Churn: ${bench.fleetSize} schools, Zipf traffic (s = 1.1), TENANT_CONNECTIONS_MAX=${CHURN_BUDGET}`,
  async run (bench) {
    const base = await bench.measureBaseline()
    const urls = Array.from({ length: bench.fleetSize }, (_, i) => bench.schoolUrl(i + 1))
    const ceiling = await connectRate(urls, bench.options.connections, 5)
    const service = await bench.startService({ TENANT_CONNECTIONS_MAX: String(CHURN_BUDGET) })
    const pick = zipf(bench.fleetSize, 1.1, seededRandom(42))
    const trace: number[] = []
    let recording = false
    const next: NextRequest = () => {
      const school = pick()
      if (recording) trace.push(school)
      return { path: WEEK_PATH, headers: { authorization: `Bearer ${bench.tokenFor(bench.slug(school + 1))}` } }
    }
    for (let i = 0; i < bench.fleetSize; i++) bench.tokenFor(bench.slug(i + 1))
    const loadRun = async (seconds: number): ReturnType<typeof load> =>
      await load({ url: service.url, connections: bench.options.connections, durationSeconds: seconds, next })
    // The warm-up fills the budget and lets the use counts settle; B measures
    // what follows, where every newcomer takes an idle school's connection.
    // Both are long: the counts need thousands of requests to tell a school
    // used now and then from one that came once.
    const warmup = await loadRun(3 * bench.options.duration)
    const before = await metrics(service.url)
    const sampler = sampleConnections(bench.admin)
    recording = true
    const started = Date.now()
    const result = await loadRun(2 * bench.options.duration)
    const seconds = (Date.now() - started) / 1000
    recording = false
    const peak = await sampler.stop()
    const after = await metrics(service.url)
    await service.stop()

    const delta = (name: string): number => (after[name] ?? 0) - (before[name] ?? 0)
    const lookups = delta('tenant_pool_hits_total') + delta('tenant_pool_misses_total')
    const missRate = lookups === 0 ? 0 : delta('tenant_pool_misses_total') / lookups
    const idealMissRate = staticTopMissRate(trace, CHURN_BUDGET)
    const possible = missRate === 0 ? base.rps : Math.min(base.rps, ceiling.perSecond / missRate)
    say(formatTable(['measure', 'value', 'target'], [
      [`warm-up, ${3 * bench.options.duration} s (req/s, p99 ms)`, `${fmt(warmup.rps)}, ${warmup.p99}`, ''],
      ['measured', `${2 * bench.options.duration} s, ${fmt(result.requests)} requests`, ''],
      ['req/s (baseline in the same run)', `${fmt(result.rps)} (${fmt(base.rps)})`, ''],
      [`new connections a second this machine opens, ${bench.options.connections} at once`, fmt(ceiling.perSecond), ''],
      ['requests that had to open a connection (miss rate)', `${(missRate * 100).toFixed(1)} %`, ''],
      [`the same trace, ideal static top ${CHURN_BUDGET}`, `${(idealMissRate * 100).toFixed(1)} %`, ''],
      ['miss rate over the ideal', idealMissRate === 0 ? '-' : `${(missRate / idealMissRate).toFixed(2)}x`, '<= 1.1x'],
      ['possible req/s: min(baseline, ceiling / miss rate)', fmt(possible), ''],
      ['req/s over possible', (result.rps / possible).toFixed(2), '>= 0.80'],
      ['p50 / p99 ms', `${result.p50} / ${result.p99}`, ''],
      ['peak connections to school databases (pg_stat_activity)', String(peak), `<= ${CHURN_BUDGET}`],
      ['new connections per second', fmt(delta('tenant_connections_opened_total') / seconds, 1), ''],
      ['errors (incl. non-2xx)', String(result.errors + result.non2xx), '0']
    ]))
    return { result, baseline: base, ceiling, missRate, idealMissRate, possible, ratio: result.rps / possible, peakConnections: peak, budget: CHURN_BUDGET }
  }
}

/** The share of `trace` outside its `k` most requested schools: the misses of a cache that always held those. */
export function staticTopMissRate (trace: number[], k: number): number {
  if (trace.length === 0) return 0
  const counts = new Map<number, number>()
  for (const school of trace) counts.set(school, (counts.get(school) ?? 0) + 1)
  const top = [...counts.values()].sort((a, b) => b - a).slice(0, k).reduce((sum, n) => sum + n, 0)
  return (trace.length - top) / trace.length
}
