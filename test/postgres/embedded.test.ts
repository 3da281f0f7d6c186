import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import pg from 'pg'
import { projectRoot } from '../../src/config.js'
import { attachEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/postgres/embedded.js'
import { runScript } from '../helpers/run.js'
import { clusterPort } from '../helpers/cluster.js'

// A cluster of its own (folder and port), apart from the suite's.
const cluster = {
  dataDir: path.join(projectRoot, '.data', 'test-embedded-sharing'),
  port: clusterPort(1),
  password: 'secret-for-test',
  maxConnections: 50,
  fsync: false
}

async function answers (url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

t.before(async () => {
  await stopEmbeddedPostgres(cluster.dataDir)
  fs.rmSync(cluster.dataDir, { recursive: true, force: true })
})
t.teardown(async () => {
  await stopEmbeddedPostgres(cluster.dataDir)
  fs.rmSync(cluster.dataDir, { recursive: true, force: true })
  fs.rmSync(`${cluster.dataDir}.leases`, { recursive: true, force: true })
})

t.test('the last holder out stops the server; until then others keep it', async (t) => {
  const first = await attachEmbeddedPostgres(cluster, { holder: 'first', log: () => {} })
  t.equal(first.started, true, 'the first holder starts it')
  t.ok(fs.existsSync(path.join(cluster.dataDir, 'PG_VERSION')), 'data sits in the configured folder')
  const second = await attachEmbeddedPostgres(cluster, { holder: 'second', log: () => {} })
  t.equal(second.started, false, 'the second attaches to the running server')
  t.equal(second.url, first.url)

  const client = new pg.Client(first.url)
  await client.connect()
  const naptime = await client.query("SELECT setting FROM pg_settings WHERE name = 'autovacuum_naptime'")
  await client.end()
  t.equal(naptime.rows[0]?.setting, '600', 'autovacuum visits each database every 10 min, not every minute')

  first.release()
  t.equal(await answers(second.url), true, 'still up while the second holds it')
  second.release()
  t.equal(await answers(second.url), false, 'stopped once nobody holds it')
})

t.test('data is kept across restarts', async (t) => {
  const a = await attachEmbeddedPostgres(cluster, { holder: 'a', log: () => {} })
  const client = new pg.Client(a.url)
  await client.connect()
  await client.query('CREATE DATABASE kept_across_restarts')
  await client.end()
  a.release()

  const b = await attachEmbeddedPostgres(cluster, { holder: 'b', log: () => {} })
  t.equal(b.started, true, 'started again')
  const check = new pg.Client(b.url)
  await check.connect()
  const { rows } = await check.query("SELECT 1 FROM pg_database WHERE datname = 'kept_across_restarts'")
  await check.end()
  t.equal(rows.length, 1, 'the database created before the restart is there')
  b.release()
})

t.test('a holder that died without releasing does not keep the server up', async (t) => {
  const live = await attachEmbeddedPostgres(cluster, { holder: 'live', log: () => {} })
  // A pid lease of a process that no longer exists, as a crash leaves it.
  fs.writeFileSync(path.join(`${cluster.dataDir}.leases`, 'pid-999999999'), '999999999')
  live.release()
  t.equal(await answers(live.url), false)
  t.notOk(fs.existsSync(path.join(`${cluster.dataDir}.leases`, 'pid-999999999')), 'the dead lease was cleared')
})

t.test('two processes share one server, and a process exit releases its lease', async (t) => {
  const holder = await attachEmbeddedPostgres(cluster, { holder: 'test', log: () => {} })
  const env = {
    EMBEDDED_PG_DIR: path.relative(projectRoot, cluster.dataDir),
    EMBEDDED_PG_PORT: String(cluster.port),
    EMBEDDED_PG_PASSWORD: cluster.password,
    NODE_ENV: 'test'
  }
  const run = await runScript('scripts/migrate.ts', [], env)
  t.equal(run.code, 0, run.stderr)
  t.match(run.stderr, /Embedded PostgreSQL attached/, 'migrate attached to the running server')
  t.match(run.stderr, new RegExp(`psql postgres://postgres:secret-for-test@127\\.0\\.0\\.1:${cluster.port}/catalog`), 'prints the psql URL')
  t.equal(await answers(holder.url), true, 'the server is still up after migrate exited')
  t.same(fs.readdirSync(`${cluster.dataDir}.leases`), ['test'], 'migrate left no lease behind')
  holder.release()
  t.equal(await answers(holder.url), false)
})
