import t from 'tap'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { listDatabases } from '../../src/postgres/admin.js'
import { appMigrations } from '../../src/postgres/migrations.js'
import { testDatabases, withDatabase } from '../helpers/databases.js'
import { runScript } from '../helpers/run.js'

t.test('npm run migrate: summary, exit codes, dry run and concurrent runs', async (t) => {
  const dbs = await testDatabases(t, 'migcli')
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  // The onboarding SQL of docs/operators.md ("Adding a school"), verbatim but for the names.
  await catalog.raw(`INSERT INTO schools (slug, name, database_name) VALUES ('pinewood', 'Pinewood Elementary', '${dbs.databaseName('pinewood')}')`)
  await catalog.raw(`INSERT INTO schools (slug, name, database_name) VALUES ('oakridge', 'Oakridge Middle', '${dbs.databaseName('oakridge')}')`)

  const dry = await runScript('scripts/migrate.ts', ['--dry-run'], dbs.env)
  t.equal(dry.code, 0, dry.stderr)
  const all = (await appMigrations.names()).length
  t.match(dry.stdout, new RegExp(`pinewood\\s+default\\s+migcli_pinewood\\s+would create\\s+would create\\s+${all} pending\\s+ok`))
  t.match(dry.stdout, /Dry run, nothing changed: 2 school\(s\), 2 database\(s\) to create/)
  t.match(dry.stdout, /pinewood .+ok\s+clone: no database yet; cloned from the template; then seeds 20261130000000_current_and_next_week$/m, 'the dry run prints the plan')
  t.equal((await listDatabases(dbs.admin)).has(dbs.databaseName('pinewood')), false)

  // Two operators start migrate at the same moment.
  const [a, b] = await Promise.all([
    runScript('scripts/migrate.ts', [], dbs.env),
    runScript('scripts/migrate.ts', ['--concurrency', '1'], dbs.env)
  ])
  t.equal(a.code, 0, a.stdout + a.stderr)
  t.equal(b.code, 0, b.stdout + b.stderr)
  for (const slug of ['pinewood', 'oakridge']) {
    const recorded = await withDatabase(dbs.serverUrl, dbs.databaseName(slug), async (db) => await db('knex_migrations').count({ n: '*' }))
    t.equal(Number(recorded[0]?.n), all, `${slug}: each migration recorded exactly once`)
  }

  const noop = await runScript('scripts/migrate.ts', [], dbs.env)
  t.equal(noop.code, 0)
  t.match(noop.stdout, /Nothing to do: the catalog and all 2 school database\(s\) are up to date\./)
  t.match(noop.stdout, /oakridge\s+default\s+migcli_oakridge\s+existed\s+existed\s+up to date\s+ok/, 'the summary lists each school')

  // A school whose database holds a conflicting table fails; the exit code says so.
  await catalog('schools').insert({ slug: 'broken', name: 'Broken', database_name: dbs.databaseName('broken') })
  await dbs.admin.raw(`CREATE DATABASE ${dbs.databaseName('broken')}`)
  await withDatabase(dbs.serverUrl, dbs.databaseName('broken'), async (db) => await db.raw('CREATE TABLE lunch_week (x int)'))
  const failing = await runScript('scripts/migrate.ts', [], dbs.env)
  t.equal(failing.code, 1)
  t.match(failing.stdout, /broken\s+default\s+migcli_broken\s+existed\s+created\s+-\s+FAILED: 20261123000000_create_lunch_menu: relation "lunch_week" already exists/)
  t.match(failing.stdout, /3 school\(s\): 0 database\(s\) created \(0 from the template\), 0 migrated, 2 already up to date, 1 failed\./)

  const only = await runScript('scripts/migrate.ts', ['--school', 'pinewood'], dbs.env)
  t.equal(only.code, 0, 'the failing school is not part of a --school run')
  t.notMatch(only.stdout, /broken/)

  const unknown = await runScript('scripts/migrate.ts', ['--school', 'nosuch'], dbs.env)
  t.equal(unknown.code, 1)
  t.match(unknown.stdout, /Unknown school: nosuch \(not in the catalog\)/)
})

t.test('bad command lines get usage, exit code 2', async (t) => {
  const dbs = await testDatabases(t, 'migusage')
  for (const args of [['--concurrency', '0'], ['--concurrency', 'many'], ['--frobnicate'], ['stray']]) {
    const result = await runScript('scripts/migrate.ts', args, dbs.env)
    t.equal(result.code, 2, args.join(' '))
    t.match(result.stderr, /Usage: npm run migrate/)
  }
  t.equal((await listDatabases(dbs.admin)).has('migusage_catalog'), false, 'nothing was touched')
})
