import { formatTable } from '../../../src/fleet/table.js'
import { WEEK_PATH, type Measured } from '../measure.js'
import { fmt, median, say } from '../report.js'
import type { Scenario } from './index.js'

interface Summary { rps: number, p50: number, p99: number, errors: number, opened: number | null }

/** A: what tenancy costs a request, against the same route and query on one plain pool. */
export const overhead: Scenario = {
  name: 'A',
  needsFleet: false,
  heading: () => 'A. Overhead: GET /api/lunch-weeks/:id, a week with five days',
  async run (bench) {
    const service = await bench.startService()
    const one = bench.tokenFor(bench.slug(1))
    const fifty = Array.from({ length: Math.min(50, bench.fleetSize) }, (_, i) => bench.tokenFor(bench.slug(i + 1)))
    let turn = 0
    const runs: Record<'baseline' | 'one' | 'fifty', Measured[]> = { baseline: [], one: [], fifty: [] }
    // Interleaved rounds, so a slow spell of the machine hits every case alike.
    for (let round = 0; round < bench.options.rounds; round++) {
      runs.baseline.push(await bench.measureBaseline())
      runs.one.push(await bench.measure(service.url, () => ({ path: WEEK_PATH, headers: { authorization: `Bearer ${one}` } }), { service: true, settle: true }))
      runs.fifty.push(await bench.measure(service.url, () => ({ path: WEEK_PATH, headers: { authorization: `Bearer ${fifty[turn++ % fifty.length] ?? one}` } }), { service: true, settle: true }))
    }
    await service.stop()
    const summary = { baseline: summarize(runs.baseline), one: summarize(runs.one), fifty: summarize(runs.fifty) }
    printTable(summary, fifty.length)
    const base = summary.baseline.rps
    return { summary, runs, ratioOne: summary.one.rps / base, ratioFifty: summary.fifty.rps / base }
  }
}

function summarize (list: Measured[]): Summary {
  return {
    rps: median(list.map((r) => r.rps)),
    p50: median(list.map((r) => r.p50)),
    p99: median(list.map((r) => r.p99)),
    errors: list.reduce((sum, r) => sum + r.errors + r.non2xx, 0),
    opened: list[0]?.opened === null ? null : list.reduce((sum, r) => sum + (r.opened ?? 0), 0)
  }
}

function printTable (summary: Record<'baseline' | 'one' | 'fifty', Summary>, spread: number): void {
  const base = summary.baseline.rps
  const rows: Array<[string, Summary, string]> = [
    ['1. baseline: one pool, no JWT, no catalog', summary.baseline, '-'],
    ['2. service, 1 school, JWT on every request', summary.one, '>= 0.95'],
    [`3. service, ${spread} schools, tokens spread`, summary.fifty, '>= 0.90']
  ]
  say(formatTable(['case', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'target', 'errors', 'new conns'], rows.map(([name, r, target]) => [
    name, fmt(r.rps), String(r.p50), String(r.p99), (r.rps / base).toFixed(2), target, String(r.errors), r.opened === null ? '-' : String(r.opened)
  ])))
  say('new conns: connections the service opened to school databases while measured, all rounds.')
}
