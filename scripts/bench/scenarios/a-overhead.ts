import { formatTable } from '../../../src/fleet/table.js'
import { generateSigningKey, startJwksServer, tokenSigner } from '../../../test/helpers/jwks-server.js'
import type { Bench } from '../context.js'
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
    // A process per case, so each gets the same traffic and warms up alike.
    const service = await bench.startService()
    const spreadService = await bench.startService()
    const keys = await keySetService(bench)
    const one = bench.tokenFor(bench.slug(1))
    const fifty = Array.from({ length: Math.min(50, bench.fleetSize) }, (_, i) => bench.tokenFor(bench.slug(i + 1)))
    let turn = 0
    const runs: Record<Case, Measured[]> = { baseline: [], one: [], fifty: [], jwks: [] }
    const bearer = (token: string) => () => ({ path: WEEK_PATH, headers: { authorization: `Bearer ${token}` } })
    try {
      // Interleaved rounds, so a slow spell of the machine hits every case alike.
      for (let round = 0; round < bench.options.rounds; round++) {
        runs.baseline.push(await bench.measureBaseline())
        runs.one.push(await bench.measure(service.url, bearer(one), { service: true, settle: true }))
        runs.fifty.push(await bench.measure(spreadService.url, () => bearer(fifty[turn++ % fifty.length] ?? one)(), { service: true, settle: true }))
        runs.jwks.push(await bench.measure(keys.url, bearer(keys.token), { service: true, settle: true }))
      }
    } finally {
      await service.stop()
      await spreadService.stop()
      await keys.stop()
    }
    const summary = { baseline: summarize(runs.baseline), one: summarize(runs.one), fifty: summarize(runs.fifty), jwks: summarize(runs.jwks) }
    printTable(summary, fifty.length)
    const base = summary.baseline.rps
    return { summary, runs, ratioOne: summary.one.rps / base, ratioFifty: summary.fifty.rps / base, ratioJwks: summary.jwks.rps / base }
  }
}

type Case = 'baseline' | 'one' | 'fifty' | 'jwks'

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

function printTable (summary: Record<Case, Summary>, spread: number): void {
  const base = summary.baseline.rps
  const rows: Array<[string, Summary, string]> = [
    ['1. baseline: one pool, no JWT, no catalog', summary.baseline, '-'],
    ['2. service, 1 school, JWT on every request', summary.one, '>= 0.95'],
    [`3. service, ${spread} schools, tokens spread`, summary.fifty, '>= 0.90'],
    ['4. as 2, RS256 tokens, key from a JWKS', summary.jwks, `>= ${(summary.one.rps / base - 0.03).toFixed(2)} (2 - 0.03)`]
  ]
  say(formatTable(['case', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'target', 'errors', 'new conns'], rows.map(([name, r, target]) => [
    name, fmt(r.rps), String(r.p50), String(r.p99), (r.rps / base).toFixed(2), target, String(r.errors), r.opened === null ? '-' : String(r.opened)
  ])))
  say('new conns: connections the service opened to school databases while measured, all rounds.')
}
