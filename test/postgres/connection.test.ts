import t from 'tap'
import type pg from 'pg'
import { createKnex, openConnection } from '../../src/postgres/connection.js'
import { testServerUrl } from '../helpers/databases.js'
import { waitFor } from '../helpers/timing.js'

type Connection = pg.Client & { __knex__disposed?: unknown }

/**
 * Terminates the backend of `client` while it runs a query; resolves to the
 * query's error and the connection's broken mark as they stood when pg
 * handed over the error, before the socket's close could arrive: what a
 * pool sees when knex releases the connection.
 */
async function terminateUnderQuery (client: Connection, applicationName: string, admin: Connection): Promise<{ error: Error | undefined, disposed: unknown }> {
  const failed = new Promise<{ error: Error | undefined, disposed: unknown }>((resolve) => {
    client.query('SELECT pg_sleep(30)', (error) => { resolve({ error, disposed: client.__knex__disposed }) })
  })
  let pid = 0
  await waitFor('the query to run', 5_000, async () => {
    const { rows } = await admin.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'", [applicationName])
    pid = rows[0]?.pid ?? 0
    return pid !== 0
  })
  await admin.query('SELECT pg_terminate_backend($1)', [pid])
  return await failed
}

t.test('a connection whose backend is terminated is marked broken by the time its query fails', async (t) => {
  const url = await testServerUrl()
  const admin = await openConnection(url, { applicationName: 'school-lunch:test-admin', connectTimeoutMillis: 3_000 })
  t.teardown(async () => { await admin.end() })

  const own = await openConnection(url, { applicationName: 'school-lunch:test-own', connectTimeoutMillis: 3_000 })
  const ownFailure = await terminateUnderQuery(own, 'school-lunch:test-own', admin)
  t.match(ownFailure.error, { code: '57P01' }, 'a school pool\'s connection: the query fails with admin_shutdown')
  t.ok(ownFailure.disposed !== undefined, 'and the connection is already marked broken')
  await own.end().catch(() => {})

  const knex = createKnex(url, { max: 1, applicationName: 'school-lunch:test-knex' })
  t.teardown(async () => { await knex.destroy() })
  const pooled = await knex.client.acquireConnection() as Connection
  const knexFailure = await terminateUnderQuery(pooled, 'school-lunch:test-knex', admin)
  t.match(knexFailure.error, { code: '57P01' }, 'a knex pool\'s connection (the catalog\'s): the same error')
  t.ok(knexFailure.disposed !== undefined, 'and it is marked broken too')
  await knex.client.releaseConnection(pooled)
  t.same(await knex.raw('SELECT 1 AS one').then((r: { rows: unknown[] }) => r.rows), [{ one: 1 }], 'the pool answers the next query on a new connection')
})
