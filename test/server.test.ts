import t from 'tap'
import { buildApp } from '../src/app.js'
import { prepareCatalog } from '../src/catalog/catalog.js'
import { databaseUrl } from '../src/postgres/connection.js'
import { testDatabases } from './helpers/databases.js'
import { startServerProcess } from './helpers/run.js'

t.test('/health and /ready', async (t) => {
  const dbs = await testDatabases(t, 'srvready')
  await prepareCatalog(dbs.catalogUrl)
  const app = await buildApp({ config: dbs.config(), catalogUrl: dbs.catalogUrl, servers: dbs.topology.servers, logger: false })
  t.teardown(async () => { await app.close() })

  const health = await app.inject('/health')
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })
  const ready = await app.inject('/ready')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
})

t.test('/ready says 503 CATALOG_UNAVAILABLE when the catalog does not answer', async (t) => {
  const dbs = await testDatabases(t, 'srvnotready')
  const missing = databaseUrl(dbs.serverUrl, 'srvnotready_catalog')
  const app = await buildApp({ config: dbs.config(), catalogUrl: missing, servers: dbs.topology.servers, logger: false })
  t.teardown(async () => { await app.close() })
  const started = Date.now()
  const ready = await app.inject('/ready')
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { statusCode: 503, code: 'CATALOG_UNAVAILABLE', error: 'Service Unavailable' })
  t.ok(Date.now() - started < 3000, 'answers quickly')
  t.equal((await app.inject('/health')).statusCode, 200, 'the process itself is healthy')
})

t.test('npm start creates the catalog, serves, and stops on SIGTERM with exit 0', async (t) => {
  const dbs = await testDatabases(t, 'srvproc')
  const { address, exited, output, child } = await startServerProcess(dbs.env)
  t.equal((await fetch(`${address}/health`)).status, 200)
  t.equal((await fetch(`${address}/ready`)).status, 200, 'the catalog was created on start')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'graceful exit')
  t.match(output(), /shutting down/)
})
