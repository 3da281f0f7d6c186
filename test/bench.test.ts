import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { projectRoot } from '../src/config.js'
import { testDatabases } from './helpers/databases.js'
import { runScript } from './helpers/run.js'

// A tiny run of the real benchmark, so it cannot rot. Nothing about speed is
// asserted here: targets live in `npm run bench`, on a quiet machine. One
// run of A and F: each run of the bench prepares its schools and starts its
// processes, time the suite does not need to spend twice.
t.test('npm run bench runs scenarios A (overhead) and F (anonymous scan) end to end at a tiny size', async (t) => {
  const dbs = await testDatabases(t, 'benchsmoke')
  const result = await runScript('scripts/bench.ts', ['--quick', '--scenarios', 'A,F', '--schools', '10', '--duration', '1', '--connections', '2', '--prefix', 'benchsmoke'], {
    DATABASE_URL: dbs.catalogUrl,
    TENANT_SERVERS: `default=${dbs.serverUrl}`
  }, { timeoutMs: 170_000 })
  t.equal(result.code, 0, result.stderr)
  interface Phase { scan: { statuses: Record<string, number> } | null }
  const raw = JSON.parse(fs.readFileSync(path.join(projectRoot, 'scripts/bench/results/quick-benchsmoke.json'), 'utf8')) as {
    A?: { summary: Record<string, { rps: number, errors: number }> }
    F?: { rounds: Array<{ alone: Phase, control: Phase, scan: Phase }>, monday: { requests: number, non2xx: number, errors: number } }
  }

  t.test('A', async (t) => {
    for (const row of [/1\. baseline: one pool, no JWT, no catalog\s+[\d,]+\s+\d+\s+\d+\s+1\.00/, /2\. service, 1 school, JWT on every request\s+[\d,]+/, /3\. service, 10 schools, tokens spread\s+[\d,]+/, /4\. as 2, RS256 tokens, key from a JWKS\s+[\d,]+/, /5\. as 2, without metrics \(METRICS=false\)\s+[\d,]+/]) {
      t.match(result.stdout, row)
    }
    t.match(result.stdout, /case 4 over case 2, round by round: \d\.\d\d; median \d\.\d\d/, 'JWKS against HS256, paired by round')
    t.match(result.stdout, /metrics: case 2 over case 5, round by round: \d\.\d\d; median \d\.\d\d/, 'what the metrics cost, paired by round')
    for (const name of ['baseline', 'one', 'fifty', 'jwks', 'bare']) {
      t.ok((raw.A?.summary[name]?.rps ?? 0) > 0, `${name} served requests`)
      t.equal(raw.A?.summary[name]?.errors, 0, `${name} had no errors`)
    }
  })

  t.test('F', async (t) => {
    t.match(result.stdout, /victim under scan \/ alone \(median of rounds\)\s+\d+\.\d\d\s+>= 0\.85/)
    t.match(result.stdout, /victim under control scan of \/health \/ alone\s+\d+\.\d\d/)
    t.match(result.stdout, /new school backends per second caused by the scan\s+[\d.]+\s+0 /)
    const round = raw.F?.rounds[0]
    t.same(Object.keys(round?.scan.scan?.statuses ?? {}), ['404'], 'the scan was answered, every time with a 404')
    t.same(Object.keys(round?.control.scan?.statuses ?? {}), ['200'], 'the control scan, with a 200')
    t.equal(round?.alone.scan, null, 'the victim ran alone too')
    t.ok((raw.F?.monday.requests ?? 0) > 0, 'Monday morning served requests')
    t.equal((raw.F?.monday.non2xx ?? -1) + (raw.F?.monday.errors ?? -1), 0, 'every Monday read found its published week')
  })

  const { rows } = await dbs.admin.raw("SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'benchsmoke%'")
  t.equal(rows[0].n, 0, 'the bench dropped its databases on a configured server')
})
