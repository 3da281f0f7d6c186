import t from 'tap'
import { createServer, type Socket } from 'node:net'
import { openCatalog } from '../../src/catalog/catalog.js'
import { testApp } from '../helpers/app.js'
import { testServerUrl } from '../helpers/databases.js'
import { waitFor } from '../helpers/timing.js'

t.test('a school database that accepts no connections is a 503, not a 500, and comes back', async (t) => {
  const { app, dbs, auth } = await testApp(t, 'noconn', { schools: ['shut', 'open'], tenancy: { unavailableForMs: 50 } })
  const database = dbs.databaseName('shut')
  await dbs.admin.raw(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`)
  t.teardown(async () => { await dbs.admin.raw(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`).catch(() => {}) })

  const shut = await app.inject({ url: '/api/lunch-weeks', headers: auth('shut') })
  t.equal(shut.statusCode, 503)
  t.equal(shut.json().code, 'SCHOOL_DATABASE_UNAVAILABLE')
  t.equal(shut.headers['retry-after'], '5')
  t.equal((await app.inject({ url: '/api/lunch-weeks', headers: auth('open') })).statusCode, 200, 'the other school is served')

  await dbs.admin.raw(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`)
  await waitFor('the school to answer again', 10_000, async () =>
    (await app.inject({ url: '/api/lunch-weeks', headers: auth('shut') })).statusCode === 200)
  t.pass('once it accepts connections again, the school answers 200')
})

t.test('a server that takes the connection and never answers is a 503, not a 500', async (t) => {
  // A hung server: the kernel accepts, nothing ever speaks.
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => { sockets.add(socket) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => silent.close(resolve))
  })
  const port = (silent.address() as { port: number }).port
  const { app, dbs, auth } = await testApp(t, 'hungsrv', {
    schools: ['fine'],
    env: { TENANT_SERVERS: `default=${await testServerUrl()},silent=postgres://u:p@127.0.0.1:${port}` }
  })
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  await catalog('schools').insert({ slug: 'stuck', name: 'Stuck', database_name: dbs.databaseName('stuck'), server: 'silent' })

  const stuck = await app.inject({ url: '/api/lunch-weeks', headers: auth('stuck') })
  t.equal(stuck.statusCode, 503, stuck.body)
  t.equal(stuck.json().code, 'SCHOOL_DATABASE_UNAVAILABLE', 'pg\'s "timeout expired" is the school\'s server being unavailable')
  t.equal((await app.inject({ url: '/api/lunch-weeks', headers: auth('fine') })).statusCode, 200, 'the other school is served')
})
