/*
 * npm run bench [-- --scenarios A,B,C,D,E] [--schools 1000] [--duration 10]
 *               [--connections 10] [--rounds 2] [--prefix bench] [--quick]
 *
 * Measures, side by side in one run, what tenancy costs: A overhead against a
 * single-tenant baseline, B scale to many schools under Zipf traffic, C
 * migrate and onboarding speed, D time from INSERT to first answer, E the
 * growth curve. Prints tables, writes the raw results as JSON and the growth
 * chart as SVG to scripts/bench/results/.
 *
 * Uses its own embedded PostgreSQL (.data/bench-postgres, thrown away at the
 * end) unless DATABASE_URL is set; then it works on that server in databases
 * named after --prefix and drops them afterwards.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { createSigner } from 'fast-jwt'
import type { Knex } from 'knex'
import { openCatalog } from '../src/catalog/catalog.js'
import { loadConfig, projectRoot } from '../src/config.js'
import { formatTable } from '../src/fleet/table.js'
import { createKnex, databaseUrl } from '../src/postgres/connection.js'
import { attachEmbeddedPostgres, stopEmbeddedPostgres } from '../src/postgres/embedded.js'
import { schoolRoleUrl } from '../src/postgres/roles.js'
import { anonymousScan } from './bench/anonymous-scan.js'
import { growthChart, type GrowthPoint } from './bench/chart.js'
import { catalogWithSchools, databaseOf, dropPrefix, runMigrate, seedWeeks, slugOf, WEEK_OF } from './bench/fleet.js'
import { load, type LoadResult } from './bench/load.js'
import { seededRandom, zipf } from './bench/random.js'
import { startServer, type RunningServer } from './bench/processes.js'

const USAGE = `Usage: npm run bench -- [options]

  --scenarios A,B,C,D,E,F which to run (default all; F: anonymous scan)
  --schools N             schools for B, C and E (default 1000)
  --duration S            seconds per load run (default 8)
  --connections N         concurrent HTTP connections (default 10)
  --rounds N              A: rounds of the three cases, interleaved (default 3)
  --prefix P              name prefix of the bench's databases (default bench)
  --quick                 tiny sizes, for a smoke run: 20 schools, 2 s runs, 1 round`

const RESULTS_DIR = path.join(projectRoot, 'scripts/bench/results')
const EMBEDDED_DIR = path.join(projectRoot, '.data/bench-postgres')
const BUDGET = { poolsMax: 100, poolSize: 2 }

interface Options {
  scenarios: Set<string>
  schools: number
  duration: number
  connections: number
  rounds: number
  prefix: string
  quick: boolean
}

function parseOptions (): Options {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        scenarios: { type: 'string', default: 'A,B,C,D,E,F' },
        schools: { type: 'string' },
        duration: { type: 'string' },
        connections: { type: 'string', default: '10' },
        rounds: { type: 'string' },
        prefix: { type: 'string', default: 'bench' },
        quick: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false }
      },
      strict: true,
      allowPositionals: false
    }))
  } catch (error) {
    fail((error as Error).message)
  }
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`)
    process.exit(0)
  }
  const quick = values.quick === true
  const number = (name: string, raw: string | undefined, fallback: number, min: number, max: number): number => {
    if (raw === undefined) return fallback
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) fail(`--${name} must be a whole number from ${min} to ${max}`)
    return Number(raw)
  }
  const scenarios = new Set((values.scenarios ?? '').toUpperCase().split(',').map((s) => s.trim()).filter((s) => s !== ''))
  for (const s of scenarios) if (!['A', 'B', 'C', 'D', 'E', 'F'].includes(s)) fail(`unknown scenario "${s}"`)
  if (!/^[a-z][a-z0-9_]{0,20}$/.test(values.prefix ?? '')) fail('--prefix must be lowercase letters, digits and _, at most 21 characters')
  return {
    scenarios,
    schools: number('schools', values.schools, quick ? 20 : 1000, 10, 5000),
    duration: number('duration', values.duration, quick ? 2 : 8, 1, 600),
    connections: number('connections', values.connections, 10, 1, 500),
    rounds: number('rounds', values.rounds, quick ? 1 : 3, 1, 10),
    prefix: values.prefix ?? 'bench',
    quick
  }
}

function fail (message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`)
  process.exit(2)
}

const say = (line: string): void => { process.stdout.write(`${line}\n`) }
const benchStarted = Date.now()
/** [m:ss] since the bench started, so a reader sees where the time goes. */
const elapsed = (): string => {
  const seconds = Math.round((Date.now() - benchStarted) / 1000)
  return `[${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}]`
}
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0

async function main (): Promise<void> {
  const options = parseOptions()
  const { prefix } = options
  const external = process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== ''
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    options: { ...options, scenarios: [...options.scenarios] }
  }

  // Where the bench's databases live.
  let serverUrl: string
  let release = (): void => {}
  if (external) {
    const config = loadConfig(process.env)
    serverUrl = databaseUrl(config.tenantServers?.default ?? process.env.DATABASE_URL ?? '', 'postgres')
  } else {
    await stopEmbeddedPostgres(EMBEDDED_DIR)
    removeInBackground(EMBEDDED_DIR)
    const embedded = await attachEmbeddedPostgres({ dataDir: EMBEDDED_DIR, port: 15439, password: 'postgres', maxConnections: 500, fsync: false }, { log: () => {} })
    serverUrl = embedded.url
    release = () => {
      embedded.release()
      removeInBackground(EMBEDDED_DIR)
      fs.rmSync(`${EMBEDDED_DIR}.leases`, { recursive: true, force: true })
      say('The embedded server is stopped; its data folder is being removed in the background.')
    }
  }
  const admin = createKnex(serverUrl, { max: 2, applicationName: 'school-lunch:bench' })
  const servers: RunningServer[] = []
  const jwtSecret = randomBytes(24).toString('hex')
  const roleSecret = randomBytes(24).toString('hex')
  const mainCatalog = databaseUrl(serverUrl, `${prefix}_catalog`)
  const envFor = (catalogUrl: string, extra: Record<string, string> = {}): Record<string, string> => ({
    DATABASE_URL: catalogUrl,
    TENANT_SERVERS: `default=${serverUrl}`,
    JWT_SECRET: jwtSecret,
    TENANT_ROLE_SECRET: roleSecret,
    NODE_ENV: 'development',
    ...extra
  })
  const sign = createSigner({ key: jwtSecret, algorithm: 'HS256', expiresIn: 3_600_000 })
  const tokens = new Map<string, string>()
  const tokenFor = (slug: string): string => {
    let token = tokens.get(slug)
    if (token === undefined) tokens.set(slug, token = sign({ sub: 'bench', school: slug }))
    return token
  }

  try {
    if (external) await dropPrefix(admin, prefix)
    const needsFleet = ['B', 'C', 'E', 'F'].some((s) => options.scenarios.has(s))
    const fleetSize = needsFleet ? options.schools : Math.min(50, options.schools)

    // The main fleet; its creation is scenario C's "N new schools, template".
    say(`${elapsed()} Preparing ${fleetSize} schools…`)
    await catalogWithSchools(mainCatalog, prefix, fleetSize)
    const created = await runMigrate(envFor(mainCatalog))
    if (created.code !== 0) throw new Error(`migrate failed: ${created.summary}`)
    say(`${elapsed()} Seeding a week of five days in each school…`)
    await seedWeeks(serverUrl, Array.from({ length: fleetSize }, (_, i) => databaseOf(prefix, i + 1)), 8)

    const baseline = await startServer('baseline', {
      ...envFor(mainCatalog),
      BASELINE_DATABASE_URL: schoolRoleUrl(serverUrl, databaseOf(prefix, 1), roleSecret)
    })
    servers.push(baseline)
    const weekPath = '/api/lunch-weeks/1'
    // After a warm-up; on the service, also counts the connections it opened
    // to school databases during the measured part (each one a new backend).
    const run = async (url: string, next: () => { path: string, headers: Record<string, string> }, { service = false, settle = false } = {}): Promise<LoadResult & { opened: number | null }> => {
      await load({ url, connections: options.connections, durationSeconds: Math.min(2, options.duration), next }) // warm-up
      // Between rounds idle connections close (after 10 s, by design), and
      // reopening 50 of them can outlast 2 s of warm-up on a slow machine.
      // With `settle`, warm up on until a second of load opens no connection (at most 20 s).
      const openedSoFar = async (): Promise<number> => (await metrics(url)).tenant_connections_opened_total ?? 0
      let before = service ? await openedSoFar() : null
      for (let extra = 0; before !== null && settle && extra < 20; extra++) {
        await load({ url, connections: options.connections, durationSeconds: 1, next })
        const now = await openedSoFar()
        const settled = now === before
        before = now
        if (settled) break
      }
      const result = await load({ url, connections: options.connections, durationSeconds: options.duration, next })
      return { ...result, opened: before === null ? null : await openedSoFar() - before }
    }
    const baselineRun = async (): Promise<LoadResult & { opened: number | null }> => await run(baseline.url, () => ({ path: weekPath, headers: {} }))

    if (options.scenarios.has('A')) {
      say(`\n${elapsed()} A. Overhead: GET /api/lunch-weeks/:id, a week with five days`)
      const service = await startServer('service', envFor(mainCatalog))
      servers.push(service)
      const one = tokenFor(slugOf(prefix, 1))
      const fifty = Array.from({ length: Math.min(50, fleetSize) }, (_, i) => tokenFor(slugOf(prefix, i + 1)))
      let turn = 0
      const runs: Record<string, Array<LoadResult & { opened: number | null }>> = { baseline: [], one: [], fifty: [] }
      for (let round = 0; round < options.rounds; round++) {
        runs.baseline?.push(await baselineRun())
        runs.one?.push(await run(service.url, () => ({ path: weekPath, headers: { authorization: `Bearer ${one}` } }), { service: true, settle: true }))
        runs.fifty?.push(await run(service.url, () => ({ path: weekPath, headers: { authorization: `Bearer ${fifty[turn++ % fifty.length] ?? one}` } }), { service: true, settle: true }))
      }
      const summary = Object.fromEntries(Object.entries(runs).map(([name, list]) => [name, {
        rps: median(list.map((r) => r.rps)),
        p50: median(list.map((r) => r.p50)),
        p99: median(list.map((r) => r.p99)),
        errors: list.reduce((sum, r) => sum + r.errors + r.non2xx, 0),
        opened: list[0]?.opened === null ? null : list.reduce((sum, r) => sum + (r.opened ?? 0), 0)
      }])) as Record<string, { rps: number, p50: number, p99: number, errors: number, opened: number | null }>
      const base = summary.baseline?.rps ?? 1
      const rows = [
        ['1. baseline: one pool, no JWT, no catalog', summary.baseline, '-'],
        ['2. service, 1 school, JWT on every request', summary.one, '>= 0.95'],
        [`3. service, ${fifty.length} schools, tokens spread`, summary.fifty, '>= 0.90']
      ] as const
      say(formatTable(['case', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'target', 'errors', 'new conns'], rows.map(([name, r, target]) => [
        name, fmt(r?.rps ?? 0), String(r?.p50 ?? '-'), String(r?.p99 ?? '-'), ((r?.rps ?? 0) / base).toFixed(2), target, String(r?.errors ?? 0),
        r?.opened === null || r?.opened === undefined ? '-' : String(r.opened)
      ])))
      say('new conns: connections the service opened to school databases while measured, all rounds.')
      results.A = { summary, runs, ratioOne: (summary.one?.rps ?? 0) / base, ratioFifty: (summary.fifty?.rps ?? 0) / base }
      await service.stop()
    }

    if (options.scenarios.has('B')) {
      say(`\n${elapsed()} B. Scale: ${fleetSize} schools, Zipf traffic, TENANT_POOLS_MAX=${BUDGET.poolsMax} TENANT_POOL_SIZE=${BUDGET.poolSize}`)
      const service = await startServer('service', envFor(mainCatalog, { TENANT_POOLS_MAX: String(BUDGET.poolsMax), TENANT_POOL_SIZE: String(BUDGET.poolSize) }))
      servers.push(service)
      const base = await baselineRun()
      const pick = zipf(fleetSize, 1.1, seededRandom(42))
      const next = (): { path: string, headers: Record<string, string> } => ({ path: weekPath, headers: { authorization: `Bearer ${tokenFor(slugOf(prefix, pick() + 1))}` } })
      for (let i = 0; i < fleetSize; i++) tokenFor(slugOf(prefix, i + 1))
      // Warm-up as long as the run: B measures the steady state, where the
      // pools are full and each newcomer evicts, not the first fill of an
      // empty cache (which alone is TENANT_POOLS_MAX misses).
      await load({ url: service.url, connections: options.connections, durationSeconds: options.duration, next })
      const before = await metrics(service.url)
      const sampler = sampleConnections(admin)
      const started = Date.now()
      const result = await load({ url: service.url, connections: options.connections, durationSeconds: options.duration, next })
      const seconds = (Date.now() - started) / 1000
      const peak = await sampler.stop()
      const after = await metrics(service.url)
      const evictions = (after.tenant_pool_evictions_total ?? 0) - (before.tenant_pool_evictions_total ?? 0)
      const opened = (after.tenant_connections_opened_total ?? 0) - (before.tenant_connections_opened_total ?? 0)
      const lookups = (after.tenant_pool_hits_total ?? 0) + (after.tenant_pool_misses_total ?? 0) - (before.tenant_pool_hits_total ?? 0) - (before.tenant_pool_misses_total ?? 0)
      const missRate = lookups === 0 ? 0 : ((after.tenant_pool_misses_total ?? 0) - (before.tenant_pool_misses_total ?? 0)) / lookups
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
      results.B = { result, baseline: base, ratio: result.rps / base.rps, peakConnections: peak, budget, evictionsPerSecond: evictions / seconds, missRate, connectionsOpenedPerSecond: opened / seconds }
      await service.stop()
    }

    if (options.scenarios.has('E')) {
      say(`\n${elapsed()} E. Growth: req/s and p99 as active schools grow, same connection budget`)
      const service = await startServer('service', envFor(mainCatalog, { TENANT_POOLS_MAX: String(BUDGET.poolsMax), TENANT_POOL_SIZE: String(BUDGET.poolSize) }))
      servers.push(service)
      const points: GrowthPoint[] = []
      const openedPerSecond: number[] = []
      const sizes = [1, 10, 100, 1000].filter((n) => n <= fleetSize)
      if (!sizes.includes(fleetSize) && fleetSize < 1000) sizes.push(fleetSize)
      for (const active of sizes) {
        let turn = 0
        const result = await run(service.url, () => ({ path: weekPath, headers: { authorization: `Bearer ${tokenFor(slugOf(prefix, (turn++ % active) + 1))}` } }), { service: true, settle: active <= BUDGET.poolsMax })
        points.push({ schools: active, rps: Math.round(result.rps), p99: result.p99 })
        openedPerSecond.push((result.opened ?? 0) / options.duration)
      }
      say(formatTable(['active schools', 'req/s', 'p99 ms', 'vs 1 school', 'new conns/s'], points.map((p, i) => [
        String(p.schools), fmt(p.rps), String(p.p99), ((p.rps / (points[0]?.rps ?? 1))).toFixed(2), fmt(openedPerSecond[i] ?? 0, 1)
      ])))
      fs.mkdirSync(RESULTS_DIR, { recursive: true })
      const caption = `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${new Date().toISOString().slice(0, 10)}; pools ${BUDGET.poolsMax} x ${BUDGET.poolSize}; round-robin over the active schools`
      fs.writeFileSync(path.join(RESULTS_DIR, 'growth.svg'), growthChart(points, caption))
      results.E = { points, openedPerSecond }
      await service.stop()
    }

    if (options.scenarios.has('F')) {
      say(`\n${elapsed()} F. Anonymous scan: staff load on one school while every school's public page is scanned at 100 req/s; Monday morning`)
      results.F = await anonymousScan({
        serverUrl, catalogUrl: mainCatalog, prefix, schools: fleetSize, env: (extra) => envFor(mainCatalog, extra), token: tokenFor,
        durationSeconds: options.duration, connections: options.connections, rounds: options.rounds, say, track: (server) => servers.push(server)
      })
    }

    if (options.scenarios.has('C')) {
      say(`\n${elapsed()} C. Migrate: creating and migrating new schools (npm run migrate, timed end to end)`)
      const small = Math.min(100, fleetSize)
      const rows: string[][] = []
      const record = (what: string, count: number, r: { seconds: number, code: number | null }, target = ''): void => {
        rows.push([what, String(count), r.seconds.toFixed(1), fmt((r.seconds * 1000) / count, 1), r.code === 0 ? 'ok' : `exit ${String(r.code)}`, target])
      }
      record(`${fleetSize} new, template, default concurrency`, fleetSize, created, fleetSize >= 1000 ? '< 60 s' : '')
      const fresh = async (name: string, count: number, args: string[]): Promise<{ seconds: number, code: number | null }> => {
        const catalogUrl = databaseUrl(serverUrl, `${prefix}_${name}_catalog`)
        await catalogWithSchools(catalogUrl, `${prefix}_${name}`, count)
        return await runMigrate(envFor(catalogUrl), args)
      }
      const smallTemplate = await fresh('c1', small, [])
      record(`${small} new, template, default concurrency`, small, smallTemplate)
      record(`${small} new, no template`, small, await fresh('c2', small, ['--no-template']))
      const serial = await fresh('c3', small, ['--concurrency', '1'])
      record(`${small} new, template, concurrency 1`, small, serial)
      const plainBig = await fresh('c4', fleetSize, ['--no-template'])
      record(`${fleetSize} new, no template`, fleetSize, plainBig)
      const noop = await runMigrate(envFor(mainCatalog))
      record(`no-op re-run over ${fleetSize} current schools`, fleetSize, noop, fleetSize >= 1000 ? '< 10 s' : '')
      say(formatTable(['run', 'schools', 'seconds', 'ms per school', 'result', 'target'], rows))
      say(`Speedup of the default concurrency over concurrency 1 (${small} schools): ${(serial.seconds / smallTemplate.seconds).toFixed(1)}x`)
      results.C = { rows, speedup: serial.seconds / smallTemplate.seconds }
    }

    if (options.scenarios.has('D')) {
      say(`\n${elapsed()} D. Onboarding: INSERT into the catalog → npm run migrate --school → first successful request`)
      const service = await startServer('service', envFor(mainCatalog))
      servers.push(service)
      const catalog = openCatalog(mainCatalog, 1)
      const timings: Array<{ slug: string, template: boolean, ms: number }> = []
      try {
        for (const [i, template] of [[1, true], [2, true], [3, true], [4, false], [5, false], [6, false]] as const) {
          const slug = `${prefix}-new-${i}`
          const started = Date.now()
          await catalog('schools').insert({ slug, name: `New school ${i}`, database_name: `${prefix}_new_${i}` })
          const migrated = await runMigrate(envFor(mainCatalog), ['--school', slug, ...(template ? [] : ['--no-template'])])
          if (migrated.code !== 0) throw new Error(`onboarding migrate failed: ${migrated.summary}`)
          while (true) {
            const res = await fetch(`${service.url}/api/lunch-weeks`, { headers: { authorization: `Bearer ${tokenFor(slug)}` } })
            if (res.status === 200) break
            if (Date.now() - started > 60_000) throw new Error(`school ${slug} never answered (${res.status})`)
            await new Promise((resolve) => setTimeout(resolve, 25))
          }
          timings.push({ slug, template, ms: Date.now() - started })
        }
      } finally {
        await catalog.destroy()
      }
      const withTemplate = median(timings.filter((t) => t.template).map((t) => t.ms))
      const without = median(timings.filter((t) => !t.template).map((t) => t.ms))
      say(formatTable(['path', 'median ms (3 schools)', 'all'], [
        ['template', fmt(withTemplate), timings.filter((t) => t.template).map((t) => t.ms).join(', ')],
        ['no template', fmt(without), timings.filter((t) => !t.template).map((t) => t.ms).join(', ')]
      ]))
      say('Most of it is starting `npm run migrate` (Node + tsx); the running API then answers the new school at once.')
      results.D = { timings, medianTemplateMs: withTemplate, medianPlainMs: without }
      await service.stop()
    }
  } finally {
    for (const server of servers) await server.stop().catch(() => {})
    if (external) await dropPrefix(admin, prefix).catch(() => {})
    await admin.destroy()
    release()
  }

  fs.mkdirSync(RESULTS_DIR, { recursive: true })
  const file = path.join(RESULTS_DIR, options.quick ? 'quick.json' : 'latest.json')
  fs.writeFileSync(file, JSON.stringify(results, null, 2))
  say(`\n${elapsed()} Raw results: ${path.relative(projectRoot, file)}`)
}

/**
 * A folder of 2,000 databases is 300,000+ files: removing it took this
 * machine 1 to 3 minutes of disk time. It is renamed at once (so a new
 * run can start clean) and deleted by a detached process that outlives us.
 */
function removeInBackground (folder: string): void {
  // Also what an earlier run left half removed (say, the machine stopped).
  const parent = path.dirname(folder)
  const leftovers = fs.existsSync(parent)
    ? fs.readdirSync(parent).filter((name) => name.startsWith(`${path.basename(folder)}.removing-`)).map((name) => path.join(parent, name))
    : []
  const doomed = [...leftovers]
  if (fs.existsSync(folder)) {
    const trash = `${folder}.removing-${process.pid}-${Date.now()}`
    fs.renameSync(folder, trash)
    doomed.push(trash)
  }
  if (doomed.length === 0) return
  const script = `for (const f of ${JSON.stringify(doomed)}) require('node:fs').rmSync(f, { recursive: true, force: true })`
  spawn(process.execPath, ['-e', script], { detached: true, stdio: 'ignore' }).unref()
}

/** Current values of /metrics, by name. */
async function metrics (url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return Object.fromEntries(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const [name, value] = l.split(' ')
    return [name ?? '', Number(value)]
  }))
}

/** Samples connections the API holds to school databases, every 100 ms; stop() gives the peak. */
function sampleConnections (admin: Knex): { stop: () => Promise<number> } {
  let peak = 0
  let running = true
  const loop = (async () => {
    while (running) {
      const { rows } = await admin.raw<{ rows: Array<{ n: string }> }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'school-lunch:api'")
      peak = Math.max(peak, Number(rows[0]?.n ?? 0))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  return { stop: async () => { running = false; await loop; return peak } }
}

await main().catch((error: Error) => {
  process.stderr.write(`Benchmark failed: ${error.message}\n`)
  process.exitCode = 1
})
