// `npm run isolation` as an operator runs it: against the configured
// server, where TENANT_ROLE_SECRET is the deployment's, not the
// development one the suite's other files fall back on.
import t from 'tap'
import { isolationSlugs } from '../../scripts/isolation/schools.js'
import { defaultDatabaseName } from '../../src/fleet/school-admin.js'
import { quoteIdentifier } from '../../src/postgres/names.js'
import { schoolRoleName } from '../../src/postgres/roles.js'
import { testDatabases } from '../helpers/databases.js'
import { runScript } from '../helpers/run.js'

t.test('the check provisions its schools with the configured role secret, and finds no leak', async (t) => {
  const dbs = await testDatabases(t, 'ic')
  // Its schools' databases have fixed names (school_iso_001, …): no other file uses them.
  const databases = isolationSlugs(2).map(defaultDatabaseName)
  const dropSchools = async (): Promise<void> => {
    for (const name of databases) {
      await dbs.admin.raw(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`)
      await dbs.admin.raw(`DROP ROLE IF EXISTS ${quoteIdentifier(schoolRoleName(name))}`)
    }
  }
  await dropSchools()

  const run = await runScript('scripts/isolation.ts', ['--schools', '2', '--requests', '300', '--concurrency', '8'],
    { ...dbs.env, TENANT_ROLE_SECRET: 'the-deployment-secret-of-this-test-0123456789' })
  t.equal(run.code, 0, run.stdout + run.stderr)
  t.match(run.stdout, /^Schools: 2 \(2 database\(s\) created\)/m, 'it created both schools')
  t.match(run.stdout, /^Statuses: +200: \d+/m, 'the API served them: it logs in with the secret the schools were given')
  t.match(run.stdout, /^Leaks: +0$/m)
  t.match(run.stdout, /^Unexpected: +0$/m)
  await dropSchools()
})
