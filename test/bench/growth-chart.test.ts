import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { projectRoot } from '../../src/config.js'
import { testDatabases } from '../helpers/databases.js'
import { runScript } from '../helpers/run.js'

// Scenario E alone takes two minutes or more on a busy machine, even quick:
// a file of its own, so it neither pushes bench.test.ts past tap's 180 s nor
// waits for it; the timeout tells tap how long this file may take.
t.setTimeout(300_000)

t.test('a quick run of scenario E writes its own chart and leaves the tracked one alone', async (t) => {
  const tracked = path.join(projectRoot, 'scripts/bench/results/growth.svg')
  const quickChart = path.join(projectRoot, 'scripts/bench/results/growth-quick.svg')
  const before = { content: fs.readFileSync(tracked, 'utf8'), mtimeMs: fs.statSync(tracked).mtimeMs }
  fs.rmSync(quickChart, { force: true })
  const dbs = await testDatabases(t, 'benchgrowth')
  const result = await runScript('scripts/bench.ts', ['--quick', '--scenarios', 'E', '--schools', '10', '--duration', '1', '--connections', '2', '--prefix', 'benchgrowth'], {
    DATABASE_URL: dbs.catalogUrl,
    TENANT_SERVERS: `default=${dbs.serverUrl}`
  }, { timeoutMs: 280_000 })
  t.equal(result.code, 0, result.stderr)
  t.equal(fs.readFileSync(tracked, 'utf8'), before.content, 'growth.svg, the chart the README shows, is as committed')
  t.equal(fs.statSync(tracked).mtimeMs, before.mtimeMs, 'and was not even rewritten')
  t.match(fs.readFileSync(quickChart, 'utf8'), /^<svg [^>]*>[\s\S]*budget holds the active schools[\s\S]*<\/svg>\n?$/, 'the quick run drew its chart beside it')
})
