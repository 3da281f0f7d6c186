// The migration status the catalog records per school, and the operator's
// commands built on it: --status, --failed, --rollback.
import t from 'tap'
import type { Knex } from 'knex'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { listDatabases } from '../../src/postgres/admin.js'
import { appMigrations } from '../../src/postgres/migrations.js'
import { testDatabases, withDatabase, type TestDatabases } from '../helpers/databases.js'
import { runScript } from '../helpers/run.js'

const LUNCH_TABLES = ['knex_migrations', 'knex_migrations_lock', 'lunch_day', 'lunch_week']

interface StatusRow {
  slug: string
  migration: string | null
  migrated_at: Date | null
  last_error: string | null
  last_run_at: Date | null
}

async function statusRows (catalog: Knex): Promise<Record<string, StatusRow>> {
  const rows = await catalog('school_migration_status as m').join('schools as s', 's.id', 'm.school_id')
    .select('s.slug', 'm.migration', 'm.migrated_at', 'm.last_error', 'm.last_run_at').orderBy('s.slug') as StatusRow[]
  return Object.fromEntries(rows.map((row) => [row.slug, row]))
}

async function tables (dbs: TestDatabases, slug: string): Promise<string[]> {
  return await withDatabase(dbs.serverUrl, dbs.databaseName(slug), async (db) => {
    const { rows } = await db.raw<{ rows: Array<{ tablename: string }> }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return rows.map((r) => r.tablename)
  })
}

const time = (d: Date | null | undefined): number | null => d == null ? null : d.getTime()

t.test('migrate records each school; --status, --failed and --rollback work from that record', async (t) => {
  const dbs = await testDatabases(t, 'stfleet')
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  const all = await appMigrations.names()
  const latest = all.at(-1) as string
  const migrate = async (args: string[]): Promise<Awaited<ReturnType<typeof runScript>>> => await runScript('scripts/migrate.ts', args, dbs.env)

  await catalog('schools').insert(['ok1', 'ok2', 'broken'].map((slug) => ({ slug, name: `School ${slug}`, database_name: dbs.databaseName(slug) })))
  // A conflicting table makes the lunch migration fail for broken.
  await dbs.admin.raw(`CREATE DATABASE ${dbs.databaseName('broken')}`)
  await withDatabase(dbs.serverUrl, dbs.databaseName('broken'), async (db) => await db.raw('CREATE TABLE lunch_day (x int)'))

  const startedAt = Date.now()
  const first = await migrateSchools(dbs.topology, { concurrency: 2, useTemplate: false })
  t.equal(hasFailures(first), true, 'broken fails')

  // ---- what the first run recorded
  let status = await statusRows(catalog)
  t.same(Object.keys(status), ['broken', 'ok1', 'ok2'], 'one status row per school migrated')
  for (const slug of ['ok1', 'ok2']) {
    const row = status[slug]
    t.equal(row?.migration, latest, `${slug}: the latest migration is recorded`)
    t.equal(row?.last_error, null, `${slug}: no error`)
    t.ok(row?.migrated_at instanceof Date && Math.abs(row.migrated_at.getTime() - startedAt) < 60_000, `${slug}: migrated_at is set to the run (${row?.migrated_at?.toISOString()})`)
    t.ok(row?.last_run_at instanceof Date, `${slug}: last_run_at is set`)
  }
  t.equal(status.broken?.migration, null, 'broken: no migration recorded')
  t.equal(status.broken?.migrated_at, null, 'broken: never migrated')
  t.match(status.broken?.last_error, /^20261123000000_create_lunch_menu: relation "lunch_day" already exists/, 'broken: the error is recorded')

  // A school added afterwards and never migrated.
  await catalog('schools').insert({ slug: 'newbie', name: 'School newbie', database_name: dbs.databaseName('newbie') })
  const beforeStatus = await statusRows(catalog)
  const brokenTables = await tables(dbs, 'broken')
  t.same(brokenTables, ['knex_migrations', 'knex_migrations_lock', 'lunch_day'], 'the failed batch was rolled back in broken')

  // ---- --status reads the catalog and migrates nothing
  const shown = await migrate(['--status'])
  t.equal(shown.code, 0, shown.stderr)
  t.match(shown.stdout, /^school\s+server\s+status\s+state\s+migration\s+migrated at\s+seeds\s+last error$/m, 'a table with a header')
  t.match(shown.stdout, /^broken\s+default\s+active\s+failed\s+-\s+-\s+-\s+20261123000000_create_lunch_menu: relation "lunch_day" already exists/m, 'broken is failed, with its error')
  t.match(shown.stdout, /^newbie\s+default\s+active\s+never\s+-\s+-\s+-$/m, 'newbie was never migrated')
  for (const slug of ['ok1', 'ok2']) {
    t.match(shown.stdout, new RegExp(`^${slug}\\s+default\\s+active\\s+current\\s+${latest}\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\s+-$`, 'm'), `${slug} is current`)
  }
  t.match(shown.stdout, `4 school(s): 2 current, 0 behind, 1 failed, 1 never. Latest app migration: ${latest}.`, 'the counts line')
  t.notMatch(shown.stdout, /Catalog:|applied|Took/, 'no migrate report')
  t.equal((await listDatabases(dbs.admin)).has(dbs.databaseName('newbie')), false, '--status created no database for newbie')
  t.same(await statusRows(catalog), beforeStatus, '--status recorded nothing')
  t.same(await tables(dbs, 'broken'), brokenTables, 'broken was not touched')

  // ---- --failed retries only broken, once its conflict is gone
  await withDatabase(dbs.serverUrl, dbs.databaseName('broken'), async (db) => await db.raw('DROP TABLE lunch_day'))
  const retried = await migrate(['--failed', '--no-template'])
  t.equal(retried.code, 0, retried.stdout + retried.stderr)
  t.match(retried.stdout, new RegExp(`^broken\\s+default\\s+stfleet_broken\\s+existed\\s+updated\\s+${all.length} applied\\s+ok$`, 'm'),
    'broken is migrated (its role, made before the failure but never recorded in the catalog, gets its password set again)')
  t.notMatch(retried.stdout, /^(ok1|ok2|newbie)\s/m, 'and no other school is in the run')
  t.match(retried.stdout, /^1 school\(s\): 0 database\(s\) created \(0 from the template\), 1 migrated, 0 already up to date, 0 failed\.$/m)
  t.same(await tables(dbs, 'broken'), LUNCH_TABLES)
  status = await statusRows(catalog)
  t.equal(status.broken?.migration, latest, 'broken: now at the latest migration')
  t.equal(status.broken?.last_error, null, 'broken: the error is cleared')
  t.ok(status.broken?.migrated_at instanceof Date, 'broken: migrated_at set')
  for (const slug of ['ok1', 'ok2']) {
    t.equal(time(status[slug]?.migrated_at), time(beforeStatus[slug]?.migrated_at), `${slug}: migrated_at unchanged`)
    t.equal(time(status[slug]?.last_run_at), time(beforeStatus[slug]?.last_run_at), `${slug}: last_run_at unchanged`)
  }
  t.equal(status.newbie, undefined, 'newbie (never migrated, not failed) was left out')
  t.equal((await listDatabases(dbs.admin)).has(dbs.databaseName('newbie')), false, 'and still has no database')

  const noneFailed = await migrate(['--failed'])
  t.equal(noneFailed.code, 0, noneFailed.stderr)
  t.notMatch(noneFailed.stdout, /^(ok1|ok2|broken|newbie)\s/m, 'with nothing failed, --failed migrates no school')
  t.equal((await listDatabases(dbs.admin)).has(dbs.databaseName('newbie')), false)

  // ---- --rollback --school ok1 undoes the newest migration in ok1 only, and never its baseline unasked
  const [baseline, newest] = [all[0] as string, all.at(-1) as string]
  const beforeRollback = await statusRows(catalog)
  const rolled = await migrate(['--rollback', '--school', 'ok1'])
  t.equal(rolled.code, 0, rolled.stdout + rolled.stderr)
  t.match(rolled.stdout, new RegExp(`^ok1\\s+default\\s+stfleet_ok1\\s+existed\\s+existed\\s+undone: ${newest}\\s+ok$`, 'm'))
  t.notMatch(rolled.stdout, /^(ok2|broken|newbie)\s/m, 'only ok1 was in the run')
  t.same(await tables(dbs, 'ok1'), LUNCH_TABLES, 'ok1 keeps its lunch tables')
  const again1 = await migrate(['--rollback', '--school', 'ok1'])
  t.match(again1.stdout, /^ok1\s+default\s+stfleet_ok1\s+existed\s+existed\s+nothing to undo\s+ok$/m, 'a second rollback undoes nothing more')
  const refused = await migrate(['--rollback', '--undo-baseline', '--school', 'ok1'])
  t.equal(refused.code, 2, 'undoing the baseline without --yes is refused')
  t.same(await tables(dbs, 'ok1'), LUNCH_TABLES, 'and changes nothing')
  const dropped = await migrate(['--rollback', '--undo-baseline', '--yes', '--school', 'ok1'])
  t.equal(dropped.code, 0, dropped.stdout + dropped.stderr)
  t.match(dropped.stdout, new RegExp(`^ok1\\s+default\\s+stfleet_ok1\\s+existed\\s+existed\\s+undone: ${baseline}\\s+ok$`, 'm'))
  t.match(dropped.stdout, /^Rolled back to before the first migration: 1 school\(s\), 1 with migrations undone, 0 with none to undo \(left alone\), 0 failed\.$/m)
  t.same(await tables(dbs, 'ok1'), ['knex_migrations', 'knex_migrations_lock'], 'ok1: the lunch tables are gone')
  t.same(await withDatabase(dbs.serverUrl, dbs.databaseName('ok1'), async (db) => await db('knex_migrations').select('name')), [],
    "ok1: knex's history no longer has any migration")
  for (const slug of ['ok2', 'broken']) t.same(await tables(dbs, slug), LUNCH_TABLES, `${slug}: still has the lunch tables`)
  status = await statusRows(catalog)
  t.equal(status.ok1?.migration, null, 'ok1: the status records no migration (there is none before the first)')
  t.equal(status.ok1?.last_error, null)
  t.equal(time(status.ok2?.migrated_at), time(beforeRollback.ok2?.migrated_at), 'ok2: status unchanged')
  t.equal(time(status.broken?.migrated_at), time(beforeRollback.broken?.migrated_at), 'broken: status unchanged')
  t.equal((await listDatabases(dbs.admin)).has(dbs.databaseName('newbie')), false, 'rollback created nothing')

  const afterRollback = await migrate(['--status'])
  t.equal(afterRollback.code, 0)
  t.notMatch(afterRollback.stdout, /^ok1\s+default\s+active\s+current/m, 'ok1 is no longer shown current')
  t.match(afterRollback.stdout, /^ok2\s+default\s+active\s+current/m)
  t.match(afterRollback.stdout, /^Template on default: (current|behind|missing)/m, "--status shows the server's template")

  // ---- a plain migrate brings ok1 back (and finally sets newbie up)
  const again = await migrate(['--no-template'])
  t.equal(again.code, 0, again.stdout + again.stderr)
  t.match(again.stdout, new RegExp(`^ok1\\s+default\\s+stfleet_ok1\\s+existed\\s+existed\\s+${all.length} applied\\s+ok$`, 'm'), 'ok1 is migrated again')
  t.match(again.stdout, new RegExp(`^newbie\\s+default\\s+stfleet_newbie\\s+created\\s+created\\s+${all.length} applied\\s+ok$`, 'm'))
  t.same(await tables(dbs, 'ok1'), LUNCH_TABLES, 'ok1: the lunch tables are back')
  status = await statusRows(catalog)
  t.equal(status.ok1?.migration, latest, 'ok1: recorded at the latest migration again')
  t.equal(status.newbie?.migration, latest)
  const final = await migrate(['--status'])
  t.match(final.stdout, '4 school(s): 4 current, 0 behind, 0 failed, 0 never.')

  // ---- --rollback and --failed do not combine
  const both = await migrate(['--rollback', '--failed'])
  t.equal(both.code, 2, 'a bad command line')
  t.match(both.stderr, /--rollback and --failed do not go together/)
  t.match(both.stderr, /Usage: npm run migrate/)
  t.same(await tables(dbs, 'ok1'), LUNCH_TABLES, 'nothing was rolled back')
  t.same(await tables(dbs, 'ok2'), LUNCH_TABLES)
})
