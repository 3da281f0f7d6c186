import t from 'tap'
import { openConnection } from '../../src/postgres/connection.js'
import { testServerUrl } from '../helpers/databases.js'
import { waitFor } from '../helpers/timing.js'

t.test('a connection whose backend is terminated is marked broken by the time its query fails', async (t) => {
  const url = await testServerUrl()
  const applicationName = 'school-lunch:test-terminated'
  const client = await openConnection(url, { applicationName, connectTimeoutMillis: 3_000 })
  const admin = await openConnection(url, { applicationName: 'school-lunch:test-admin', connectTimeoutMillis: 3_000 })
  t.teardown(async () => {
    await client.end().catch(() => {})
    await admin.end()
  })

  // The callback runs while pg handles the server's error message, before
  // the socket's close can arrive: what a pool sees when knex releases it.
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

  const { error, disposed } = await failed
  t.match(error, { code: '57P01' }, 'the query fails with admin_shutdown')
  t.ok(disposed !== undefined, 'and the connection is already marked broken')
})
