import t from 'tap'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { buildApp } from '../src/app.js'
import { prepareCatalog } from '../src/catalog/catalog.js'
import { projectRoot } from '../src/config.js'
import { databaseUrl } from '../src/postgres/connection.js'
import { testDatabases } from './helpers/databases.js'

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
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'src/server.ts')], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', ...dbs.env, ENV_FILE: '/dev/null', PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 60_000)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match?.[1] !== undefined) { clearTimeout(timer); resolve(match[1]) }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
  })
  t.equal((await fetch(`${address}/health`)).status, 200)
  t.equal((await fetch(`${address}/ready`)).status, 200, 'the catalog was created on start')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'graceful exit')
  t.match(output, /shutting down/)
})
