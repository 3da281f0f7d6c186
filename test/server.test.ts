import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
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
  const { address, exited, output, child } = await startServerProcess({ ...dbs.env, SHUTDOWN_DRAIN_MS: '0' })
  t.equal((await fetch(`${address}/health`)).status, 200)
  t.equal((await fetch(`${address}/ready`)).status, 200, 'the catalog was created on start')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'graceful exit')
  t.match(output(), /shutting down/)
})

interface Answer {
  status?: number
  /** The error of a request that got no answer: ECONNRESET, ECONNREFUSED, … */
  error?: string
  /** The Connection header of the answer. */
  connection?: string
}

/** One GET: on a connection of its own (agent false, Connection: close), or on a keep-alive agent's. */
async function get (url: string, agent: http.Agent | false): Promise<Answer> {
  return await new Promise((resolve) => {
    http.get(url, { agent }, (res) => {
      res.resume()
      res.on('end', () => { resolve({ status: res.statusCode, connection: res.headers.connection }) })
    }).on('error', (error: NodeJS.ErrnoException) => { resolve({ error: error.code ?? error.message }) })
  })
}

t.test('SIGTERM with a drain: /ready fails at once, and every connection opened meanwhile is answered', async (t) => {
  const dbs = await testDatabases(t, 'srvdrain')
  const server = await startServerProcess({ ...dbs.env, SHUTDOWN_DRAIN_MS: '3000' })
  t.teardown(() => { if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL') })
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => { keepAlive.destroy() })

  const answers: Array<Answer & { afterSignal: boolean, keptAlive: boolean }> = []
  const state = { signalled: false, inRotation: true }
  let reachedTwenty: () => void = () => {}
  const twenty = new Promise<void>((resolve) => { reachedTwenty = resolve })
  const client = async (agent: http.Agent | false): Promise<void> => {
    while (state.inRotation) {
      const afterSignal = state.signalled
      answers.push({ ...await get(`${server.address}/health`, agent), afterSignal, keptAlive: agent !== false })
      if (answers.length >= 20) reachedTwenty()
    }
  }
  // Like the balancer's health check: every 250 ms, out of rotation after two failures in a row.
  const balancer = async (): Promise<void> => {
    for (let failures = 0; failures < 2; await sleep(250)) {
      const ready = await get(`${server.address}/ready`, false)
      answers.push({ ...ready, afterSignal: state.signalled, keptAlive: false })
      failures = ready.status === 200 ? 0 : failures + 1
    }
    state.inRotation = false
  }
  const traffic = Promise.all([client(false), client(false), client(false), client(keepAlive), balancer()])

  await twenty
  state.signalled = true
  server.child.kill('SIGTERM')
  await server.printed(/shutting down: \/ready answers 503; accepting connections for 3000 ms more/)
  const ready = await get(`${server.address}/ready`, false)
  t.equal(ready.status, 503, '/ready fails as soon as the drain begins')
  server.child.kill('SIGTERM')
  await server.printed(/already shutting down; SIGTERM ignored/)
  await traffic
  t.equal(await server.exited, 0, 'exit 0 once the drain is over')

  t.same(answers.filter((a) => a.error !== undefined), [], 'every connection was answered: none reset, none refused')
  const after = answers.filter((a) => a.afterSignal)
  t.ok(after.filter((a) => !a.keptAlive).length > 0, `new connections went on being opened after SIGTERM (${after.length} requests)`)
  t.same(new Set(after.filter((a) => a.status !== 503).map((a) => a.status)), new Set([200]), 'and got their 200, /ready apart')
  t.ok(answers.some((a) => a.keptAlive && !a.afterSignal && a.connection === 'keep-alive'), 'a keep-alive connection stayed open before')
  t.ok(after.some((a) => a.keptAlive && a.connection === 'close'), 'and was told to close during the drain')
  const output = server.output()
  t.ok(output.indexOf('accepting connections for') < output.indexOf('shutting down: finishing in-flight requests'), 'the listener closed after the drain')
})
