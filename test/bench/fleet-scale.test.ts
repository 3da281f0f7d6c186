import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { projectRoot } from '../../src/config.js'
import { clusterPort } from '../helpers/cluster.js'
import { runScript } from '../helpers/run.js'

// A tiny run of scenarios C and H on two embedded servers of the bench's
// own, so the fleet-at-scale path cannot rot. Nothing about speed is
// asserted: the targets are printed by the bench, not checked here.
t.test('npm run bench runs C and H on two servers at a tiny size', async (t) => {
  const dataDir = path.join(projectRoot, '.data/test-bench-postgres')
  const result = await runScript('scripts/bench.ts', ['--quick', '--scenarios', 'C,H', '--servers', '2', '--schools', '10', '--duration', '1', '--prefix', 'benchfleet'], {
    // Its two servers take offsets 12 and 13 (see test/helpers/cluster.ts).
    BENCH_PG_PORT: String(clusterPort(12)),
    BENCH_PG_DIR: dataDir
  }, { timeoutMs: 170_000 })
  t.equal(result.code, 0, result.stdout + result.stderr)
  t.match(result.stdout, /^This run needs about [\d.]+ GB of disk and [\d.]+ GB of memory:$/m, 'it says what it needs before it starts')
  for (const run of ['10 new, template, default concurrency', 'no-op re-run over 10 current schools', 'migrate --status over 10 schools',
    'schools list over 10 schools', 'one-migration rollout over 10 current schools', 'its rollback over 10 schools']) {
    t.match(result.stdout, new RegExp(`^${run}\\s+10\\s+[\\d.]+\\s+[\\d.,]+\\s.*\\sok$`, 'm'), run)
  }
  const peaks = /^Most connections migrate held on each server .*: default (\d+) creating, (\d+) rolling out; pg2 (\d+) creating, (\d+) rolling out\.$/m.exec(result.stdout)
  t.ok(peaks, 'connections per server are reported')
  for (const peak of peaks?.slice(1) ?? []) t.ok(Number(peak) <= 8 + 5, `at most concurrency 8 + 4 for CREATE DATABASE + 1 probe on a server (${peak})`)
  t.match(result.stdout, /^caches, warm\s+10 \/ 10 \/ \d+ \/ 0$/m, 'H: every active school cached and pooled')
  t.match(result.stdout, /^resync: every active school read again from the catalog within\s+[\d,]+ ms of the reconnect \(\d+ lookups\)$/m, 'H: the resync was seen')
  t.match(result.stdout, /^longest request, from the kill to 1 s after the re-read\s+[\d,]+ ms \(0 not 200\)$/m, 'no request failed during it')
  t.notOk(fs.existsSync(dataDir), 'the data folders are moved away for removal')
})
