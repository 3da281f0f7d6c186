import { formatTable } from '../../../src/fleet/table.js'
import { generateSigningKey, startJwksServer, tokenSigner } from '../../../test/helpers/jwks-server.js'
import type { Bench } from '../context.js'
import { WEEK_PATH, type Measured } from '../measure.js'
import { fmt, median, say } from '../report.js'
import type { Scenario } from '../scenario.js'

interface Summary { rps: number, p50: number, p99: number, errors: number, opened: number | null }

/** A: what tenancy costs a request, against the same route and query on one plain pool. */
export const overhead: Scenario = {
  name: 'A',
  needsFleet: false,
  heading: () => 'A. Overhead: GET /api/lunch-weeks/:id, a week with five days',
  async run (bench) {
    // A process per case, so each gets the same traffic and warms up alike.
    const service = await bench.startService()
    const spreadService = await bench.startService()
    const keys = await keySetService(bench)
    // As case 2, without /metrics, the request histogram or the process metrics: what they cost.
    const bare = await bench.startService({ METRICS: 'false' })
    const one = bench.tokenFor(bench.slug(1))
    const fifty = Array.from({ length: Math.min(50, bench.fleetSize) }, (_, i) => bench.tokenFor(bench.slug(i + 1)))
    let turn = 0
    const runs: Record<Case, Measured[]> = { baseline: [], one: [], fifty: [], jwks: [], bare: [] }
    const bearer = (token: string) => () => ({ path: WEEK_PATH, headers: { authorization: `Bearer ${token}` } })
    const measureCase: Record<Case, () => Promise<Measured>> = {
      baseline: async () => await bench.measureBaseline(),
      one: async () => await bench.measure(service.url, bearer(one), { service: true, settle: true }),
      fifty: async () => await bench.measure(spreadService.url, () => bearer(fifty[turn++ % fifty.length] ?? one)(), { service: true, settle: true }),
      jwks: async () => await bench.measure(keys.url, bearer(keys.token), { service: true, settle: true }),
      // No /metrics to count connections by: a plain warm-up (one school settles within it).
      bare: async () => await bench.measure(bare.url, bearer(one))
    }
    try {
      // Interleaved rounds, each in an order turned by one, so a slow spell
      // of the machine and the place in a round hit every case alike.
      for (let round = 0; round < bench.options.rounds; round++) {
        for (let i = 0; i < CASES.length; i++) {
          const name = CASES[(round + i) % CASES.length] as Case
          runs[name].push(await measureCase[name]())
        }
      }
    } finally {
      await service.stop()
      await spreadService.stop()
      await keys.stop()
      await bare.stop()
    }
    const summary = { baseline: summarize(runs.baseline), one: summarize(runs.one), fifty: summarize(runs.fifty), jwks: summarize(runs.jwks), bare: summarize(runs.bare) }
    const ratios = {
      one: pairedRatio(runs.one, runs.baseline),
      fifty: pairedRatio(runs.fifty, runs.baseline),
      jwks: pairedRatio(runs.jwks, runs.baseline),
      bare: pairedRatio(runs.bare, runs.baseline),
      jwksOverOne: pairedRatio(runs.jwks, runs.one),
      oneOverBare: pairedRatio(runs.one, runs.bare)
    }
    printTable(summary, ratios, fifty.length)
    return { summary, runs, ratios }
  }
}

const CASES = ['baseline', 'one', 'fifty', 'jwks', 'bare'] as const
type Case = typeof CASES[number]

interface Ratio { median: number, rounds: number[] }

/** a over b round by round (each pair measured minutes apart at most), and their median. */
function pairedRatio (a: Measured[], b: Measured[]): Ratio {
  const rounds = a.map((run, i) => run.rps / Math.max(1, b[i]?.rps ?? 0))
  return { median: median(rounds), rounds }
}

/**
 * The service with Auth0's kind of keys: RS256 tokens whose key comes from a
 * JWKS, here served on loopback by the bench itself.
 */
async function keySetService (bench: Bench): Promise<{ url: string, token: string, stop: () => Promise<void> }> {
  const key = generateSigningKey('bench-key')
  const jwks = await startJwksServer([key])
  const audience = 'https://school-lunch.bench/api'
  try {
    const service = await bench.startService({ JWT_SECRET: '', JWT_JWKS_URL: jwks.url, JWT_AUDIENCE: audience })
    const token = tokenSigner(key)({ sub: 'bench', school: bench.slug(1), aud: audience })
    return { url: service.url, token, stop: async () => { await service.stop(); await jwks.close() } }
  } catch (error) {
    await jwks.close()
    throw error
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

function printTable (summary: Record<Case, Summary>, ratios: Record<'one' | 'fifty' | 'jwks' | 'bare' | 'jwksOverOne' | 'oneOverBare', Ratio>, spread: number): void {
  const rows: Array<[string, Summary, Ratio | null, string]> = [
    ['1. baseline: one pool, no JWT, no catalog', summary.baseline, null, '-'],
    ['2. service, 1 school, JWT on every request', summary.one, ratios.one, '>= 0.95'],
    [`3. service, ${spread} schools, tokens spread`, summary.fifty, ratios.fifty, '>= 0.90'],
    ['4. as 2, RS256 tokens, key from a JWKS', summary.jwks, ratios.jwks, `>= ${(ratios.one.median - 0.03).toFixed(2)} (2 - 0.03)`],
    ['5. as 2, without metrics (METRICS=false)', summary.bare, ratios.bare, '-']
  ]
  const perRound = (ratio: Ratio | null): string => ratio === null ? '-' : ratio.rounds.map((r) => r.toFixed(2)).join(', ')
  say(formatTable(['case', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'per round', 'target', 'errors', 'new conns'], rows.map(([name, r, ratio, target]) => [
    name, fmt(r.rps), String(r.p50), String(r.p99), ratio === null ? '1.00' : ratio.median.toFixed(2), perRound(ratio), target, String(r.errors), r.opened === null ? '-' : String(r.opened)
  ])))
  say(`case 4 over case 2, round by round: ${perRound(ratios.jwksOverOne)}; median ${ratios.jwksOverOne.median.toFixed(2)} (target >= 0.97).`)
  say(`metrics: case 2 over case 5, round by round: ${perRound(ratios.oneOverBare)}; median ${ratios.oneOverBare.median.toFixed(2)} (1.00: they cost nothing measurable).`)
  say('req/s, p50, p99: medians over rounds; ratio: the median of the ratios to the baseline of the same round.')
  say('Each round runs the cases in an order turned by one. new conns: connections the service opened to school databases while measured, all rounds.')
}
