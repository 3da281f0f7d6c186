import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { projectRoot } from '../src/config.js'
import { testDatabases } from './helpers/databases.js'
import { runScript } from './helpers/run.js'

// A tiny run of the real benchmark, so it cannot rot. Nothing about speed is
// asserted here: targets live in `npm run bench`, on a quiet machine.
t.test('npm run bench runs scenario A end to end at a tiny size', async (t) => {
  const dbs = await testDatabases(t, 'benchsmoke')
  const result = await runScript('scripts/bench.ts', ['--quick', '--scenarios', 'A', '--schools', '10', '--duration', '1', '--connections', '2', '--prefix', 'benchsmoke'], {
    DATABASE_URL: dbs.catalogUrl,
    TENANT_SERVERS: `default=${dbs.serverUrl}`
  }, { timeoutMs: 150_000 })
  t.equal(result.code, 0, result.stderr)
  for (const row of [/1\. baseline: one pool, no JWT, no catalog\s+[\d,]+\s+\d+\s+\d+\s+1\.00/, /2\. service, 1 school, JWT on every request\s+[\d,]+/, /3\. service, 10 schools, tokens spread\s+[\d,]+/, /4\. as 2, RS256 tokens, key from a JWKS\s+[\d,]+/, /5\. as 2, without metrics \(METRICS=false\)\s+[\d,]+/]) {
    t.match(result.stdout, row)
  }
  t.match(result.stdout, /case 4 over case 2, round by round: \d\.\d\d; median \d\.\d\d/, 'JWKS against HS256, paired by round')
  t.match(result.stdout, /metrics: case 2 over case 5, round by round: \d\.\d\d; median \d\.\d\d/, 'what the metrics cost, paired by round')
  const raw = JSON.parse(fs.readFileSync(path.join(projectRoot, 'scripts/bench/results/quick.json'), 'utf8')) as { A?: { summary: Record<string, { rps: number, errors: number }> } }
  for (const name of ['baseline', 'one', 'fifty', 'jwks', 'bare']) {
    t.ok((raw.A?.summary[name]?.rps ?? 0) > 0, `${name} served requests`)
    t.equal(raw.A?.summary[name]?.errors, 0, `${name} had no errors`)
  }
  const { rows } = await dbs.admin.raw("SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'benchsmoke%'")
  t.equal(rows[0].n, 0, 'the bench dropped its databases on a configured server')
})

t.test('npm run bench runs scenario F (anonymous scan) end to end at a tiny size', async (t) => {
  const dbs = await testDatabases(t, 'benchscan')
  const result = await runScript('scripts/bench.ts', ['--quick', '--scenarios', 'F', '--schools', '10', '--duration', '1', '--connections', '2', '--prefix', 'benchscan'], {
    DATABASE_URL: dbs.catalogUrl,
    TENANT_SERVERS: `default=${dbs.serverUrl}`
  }, { timeoutMs: 150_000 })
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout, /victim under scan \/ alone \(median of rounds\)\s+\d+\.\d\d\s+>= 0\.85/)
  t.match(result.stdout, /victim under control scan of \/health \/ alone\s+\d+\.\d\d/)
  t.match(result.stdout, /new school backends per second caused by the scan\s+[\d.]+\s+0 /)
  interface Phase { scan: { statuses: Record<string, number> } | null }
  const raw = JSON.parse(fs.readFileSync(path.join(projectRoot, 'scripts/bench/results/quick.json'), 'utf8')) as {
    F?: { rounds: Array<{ alone: Phase, control: Phase, scan: Phase }>, monday: { requests: number, non2xx: number, errors: number } }
  }
  const round = raw.F?.rounds[0]
  t.same(Object.keys(round?.scan.scan?.statuses ?? {}), ['404'], 'the scan was answered, every time with a 404')
  t.same(Object.keys(round?.control.scan?.statuses ?? {}), ['200'], 'the control scan, with a 200')
  t.equal(round?.alone.scan, null, 'the victim ran alone too')
  t.ok((raw.F?.monday.requests ?? 0) > 0, 'Monday morning served requests')
  t.equal((raw.F?.monday.non2xx ?? -1) + (raw.F?.monday.errors ?? -1), 0, 'every Monday read found its published week')
})
