import { formatTable } from '../../../src/fleet/table.js'
import { BUDGET } from '../context.js'
import { load } from '../load.js'
import { metrics, sampleConnections, WEEK_PATH, type NextRequest } from '../measure.js'
import { seededRandom, zipf } from '../random.js'
import { fmt, say } from '../report.js'
import type { Scenario } from './index.js'

/** B: many schools under Zipf traffic, on a fixed connection budget. */
export const scale: Scenario = {
  name: 'B',
  needsFleet: true,
  heading: (bench) => `B. Scale: ${bench.fleetSize} schools, Zipf traffic, TENANT_POOLS_MAX=${BUDGET.poolsMax} TENANT_POOL_SIZE=${BUDGET.poolSize}`,
  async run (bench) {
    const service = await bench.startService({ TENANT_POOLS_MAX: String(BUDGET.poolsMax), TENANT_POOL_SIZE: String(BUDGET.poolSize) })
    const base = await bench.measureBaseline()
    const pick = zipf(bench.fleetSize, 1.1, seededRandom(42))
    const next: NextRequest = () => ({ path: WEEK_PATH, headers: { authorization: `Bearer ${bench.tokenFor(bench.slug(pick() + 1))}` } })
    for (let i = 0; i < bench.fleetSize; i++) bench.tokenFor(bench.slug(i + 1))
    const loadRun = async (): ReturnType<typeof load> =>
      await load({ url: service.url, connections: bench.options.connections, durationSeconds: bench.options.duration, next })
    // Warm-up as long as the run: B measures the steady state, where the
    // pools are full and each newcomer evicts, not the first fill of an
    // empty cache (which alone is TENANT_POOLS_MAX misses).
    await loadRun()
    const before = await metrics(service.url)
    const sampler = sampleConnections(bench.admin)
    const started = Date.now()
    const result = await loadRun()
    const seconds = (Date.now() - started) / 1000
    const peak = await sampler.stop()
    const after = await metrics(service.url)
    await service.stop()

    const delta = (name: string): number => (after[name] ?? 0) - (before[name] ?? 0)
    const evictions = delta('tenant_pool_evictions_total')
    const opened = delta('tenant_connections_opened_total')
    const lookups = delta('tenant_pool_hits_total') + delta('tenant_pool_misses_total')
    const missRate = lookups === 0 ? 0 : delta('tenant_pool_misses_total') / lookups
    const budget = BUDGET.poolsMax * BUDGET.poolSize
    say(formatTable(['measure', 'value', 'target'], [
      ['req/s (baseline in the same run)', `${fmt(result.rps)} (${fmt(base.rps)})`, ''],
      ['ratio to baseline', (result.rps / base.rps).toFixed(2), '>= 0.70'],
      ['p50 / p99 ms', `${result.p50} / ${result.p99}`, ''],
      ['peak connections to school databases', String(peak), `<= ${budget}`],
      ['pool evictions per second', fmt(evictions / seconds, 1), ''],
      ['requests that had to open a pool', `${(missRate * 100).toFixed(1)} %`, ''],
      ['new connections per second', fmt(opened / seconds, 1), ''],
      ['errors (incl. non-2xx)', String(result.errors + result.non2xx), '0']
    ]))
    return { result, baseline: base, ratio: result.rps / base.rps, peakConnections: peak, budget, evictionsPerSecond: evictions / seconds, missRate, connectionsOpenedPerSecond: opened / seconds }
  }
}
