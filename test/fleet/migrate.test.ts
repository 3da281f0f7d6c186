import t from 'tap'
import type { Knex } from 'knex'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { isNoop, hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { listDatabases } from '../../src/postgres/admin.js'
import { appMigrations } from '../../src/postgres/migrations.js'
import { testDatabases, withDatabase, type TestDatabases } from '../helpers/databases.js'

async function addSchools (dbs: TestDatabases, slugs: string[], extra: Record<string, string> = {}): Promise<void> {
  const catalog = openCatalog(dbs.catalogUrl, 1)
  try {
    await catalog('schools').insert(slugs.map((slug) => ({ slug, name: `School ${slug}`, database_name: dbs.databaseName(slug), ...extra })))
  } finally {
    await catalog.destroy()
  }
}

async function tables (dbs: TestDatabases, slug: string): Promise<string[]> {
  return await withDatabase(dbs.serverUrl, dbs.databaseName(slug), async (db: Knex) => {
    const { rows } = await db.raw("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return rows.map((r: { tablename: string }) => r.tablename)
  })
}

async function appliedMigrations (dbs: TestDatabases, slug: string): Promise<string[]> {
  return await withDatabase(dbs.serverUrl, dbs.databaseName(slug), async (db) =>
    (await db('knex_migrations').select('name').orderBy('id')).map((r: { name: string }) => r.name))
}

const LUNCH_TABLES = ['knex_migrations', 'knex_migrations_lock', 'lunch_day', 'lunch_week']
// Every app migration a new school gets.
const ALL = (await appMigrations.names()).length

t.test('creates the database and tables of every school, and a re-run is a no-op', async (t) => {
  const dbs = await testDatabases(t, 'migall')
  await prepareCatalog(dbs.catalogUrl)
  await addSchools(dbs, ['pinewood', 'oakridge', 'maple', 'birch'])

  const progress: number[] = []
  // The plain path: created, then migrated (cloning is covered in template.test.ts).
  const first = await migrateSchools(dbs.topology, { concurrency: 3, useTemplate: false, onProgress: ({ done }) => progress.push(done) })
  t.equal(hasFailures(first), false)
  t.same(first.schools.map((s) => [s.slug, s.database, s.migrations.length, s.error]),
    [['birch', 'created', ALL, null], ['maple', 'created', ALL, null], ['oakridge', 'created', ALL, null], ['pinewood', 'created', ALL, null]])
  t.same(progress, [1, 2, 3, 4], 'progress is reported school by school')
  for (const slug of ['pinewood', 'oakridge', 'maple', 'birch']) {
    t.same(await tables(dbs, slug), LUNCH_TABLES, `${slug} has the lunch tables`)
  }
  const constraint = await withDatabase(dbs.serverUrl, dbs.databaseName('maple'), async (db) =>
    await db.raw("INSERT INTO lunch_week (week_of) VALUES ('2026-11-24')").then(() => 'accepted', (e: Error) => e.message))
  t.match(constraint, /lunch_week_week_of_monday/, 'a week must start on a Monday')

  const again = await migrateSchools(dbs.topology, { concurrency: 3 })
  t.equal(isNoop(again), true, 'nothing to do the second time')
  t.same(again.schools.map((s) => [s.database, s.migrations]), Array(4).fill(['existed', []]))
  t.same(await appliedMigrations(dbs, 'pinewood'), first.schools[3]!.migrations, 'nothing applied twice')
})

t.test('an existing database without tables is migrated', async (t) => {
  const dbs = await testDatabases(t, 'migempty')
  await prepareCatalog(dbs.catalogUrl)
  await addSchools(dbs, ['cedar'])
  await dbs.admin.raw(`CREATE DATABASE ${dbs.databaseName('cedar')}`)
  const report = await migrateSchools(dbs.topology, { concurrency: 2 })
  t.same(report.schools.map((s) => [s.database, s.migrations.length, s.error]), [['existed', ALL, null]])
  t.same(await tables(dbs, 'cedar'), LUNCH_TABLES)
})

t.test('one failing school does not stop the others, and its migration is not half-applied', async (t) => {
  const dbs = await testDatabases(t, 'migfail')
  await prepareCatalog(dbs.catalogUrl)
  await addSchools(dbs, ['aspen', 'broken', 'willow'])
  // A conflicting table makes the lunch migration fail after it began.
  await dbs.admin.raw(`CREATE DATABASE ${dbs.databaseName('broken')}`)
  await withDatabase(dbs.serverUrl, dbs.databaseName('broken'), async (db) => await db.raw('CREATE TABLE lunch_day (x int)'))

  const report = await migrateSchools(dbs.topology, { concurrency: 1 })
  t.equal(hasFailures(report), true)
  const bySlug = Object.fromEntries(report.schools.map((s) => [s.slug, s]))
  t.match(bySlug.broken?.error, /create_lunch_menu: relation "lunch_day" already exists/, 'the error names the migration and the cause')
  t.equal(bySlug.aspen?.error, null)
  t.equal(bySlug.willow?.error, null, 'a school after the failing one still ran')
  t.same(await tables(dbs, 'willow'), LUNCH_TABLES)
  t.same(await tables(dbs, 'broken'), ['knex_migrations', 'knex_migrations_lock', 'lunch_day'],
    'lunch_week, created before the failure, was rolled back with it')
  t.same(await appliedMigrations(dbs, 'broken'), [])

  // Once the operator clears the conflict, the next run finishes the job.
  await withDatabase(dbs.serverUrl, dbs.databaseName('broken'), async (db) => await db.raw('DROP TABLE lunch_day'))
  const retry = await migrateSchools(dbs.topology, { concurrency: 1, only: ['broken'] })
  t.equal(hasFailures(retry), false)
  t.same(await tables(dbs, 'broken'), LUNCH_TABLES)
})

t.test('two runs at the same moment neither collide nor apply anything twice', async (t) => {
  const dbs = await testDatabases(t, 'migrace')
  const slugs = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']
  await prepareCatalog(dbs.catalogUrl)
  await addSchools(dbs, slugs)
  const [a, b] = await Promise.all([
    migrateSchools(dbs.topology, { concurrency: 3, useTemplate: false }),
    migrateSchools(dbs.topology, { concurrency: 3, useTemplate: false })
  ])
  t.equal(hasFailures(a), false, JSON.stringify(a.schools.filter((s) => s.error)))
  t.equal(hasFailures(b), false, JSON.stringify(b.schools.filter((s) => s.error)))
  for (const slug of slugs) {
    t.equal((await appliedMigrations(dbs, slug)).length, ALL, `${slug}: each migration is recorded once`)
    const applied = [a, b].map((r) => r.schools.find((s) => s.slug === slug)!.migrations.length)
    t.same(applied.sort(), [0, ALL], `${slug}: exactly one run applied them`)
  }
})

t.test('--dry-run reports and changes nothing', async (t) => {
  const dbs = await testDatabases(t, 'migdry')
  await prepareCatalog(dbs.catalogUrl)
  await addSchools(dbs, ['elm', 'fir'])
  await dbs.admin.raw(`CREATE DATABASE ${dbs.databaseName('fir')}`)

  // Only this file's databases: other files create and drop theirs meanwhile.
  const ours = async (): Promise<string[]> => [...await listDatabases(dbs.admin)].filter((name) => name.startsWith('migdry_')).sort()
  const before = await ours()
  const report = await migrateSchools(dbs.topology, { concurrency: 2, dryRun: true })
  t.same(report.schools.map((s) => [s.slug, s.database, s.migrations.length]), [['elm', 'missing', ALL], ['fir', 'existed', ALL]])
  t.same(report.schools.map((s) => [s.slug, s.action, s.reason]), [
    ['elm', 'clone', 'no database yet; cloned from the template'],
    ['fir', 'migrate', 'never migrated']
  ], 'each school with the plan a real run would carry out')
  t.same(await ours(), before, 'no database was created')
  t.same(await tables(dbs, 'fir'), [], "not even knex's own tables were created")
})

t.test('a dry run with no catalog yet creates no catalog', async (t) => {
  const dbs = await testDatabases(t, 'migdrycat')
  const report = await migrateSchools(dbs.topology, { concurrency: 2, dryRun: true })
  t.equal(report.catalog.missing, true)
  t.equal((await listDatabases(dbs.admin)).has('migdrycat_catalog'), false)
})

t.test('--school limits the run; unknown slugs and servers are reported', async (t) => {
  const dbs = await testDatabases(t, 'migonly')
  await prepareCatalog(dbs.catalogUrl)
  await addSchools(dbs, ['one', 'two'])
  await addSchools(dbs, ['far'], { server: 'east' })

  const report = await migrateSchools(dbs.topology, { concurrency: 2, only: ['one', 'ghost'] })
  t.same(report.schools.map((s) => s.slug), ['one'])
  t.same(report.unknownSlugs, ['ghost'])
  t.equal(hasFailures(report), true, 'an unknown slug makes the run fail')
  t.equal((await listDatabases(dbs.admin)).has(dbs.databaseName('two')), false, 'two was left alone')

  const far = await migrateSchools(dbs.topology, { concurrency: 2, only: ['far'] })
  t.match(far.schools[0]?.error, /server "east" is not configured \(known: default\)/)
})

t.test('a no-op run trusts the catalog record; --verify looks inside every database', async (t) => {
  const dbs = await testDatabases(t, 'migverify')
  await prepareCatalog(dbs.catalogUrl)
  await addSchools(dbs, ['kept', 'tampered'])
  t.equal(hasFailures(await migrateSchools(dbs.topology, { concurrency: 2 })), false)

  // Someone drops a table behind migrate's back.
  await withDatabase(dbs.serverUrl, dbs.databaseName('tampered'), async (db) => {
    await db.raw('DROP TABLE lunch_day')
    await db.raw('DELETE FROM knex_migrations')
  })
  const trusting = await migrateSchools(dbs.topology, { concurrency: 2 })
  t.equal(isNoop(trusting), true, 'the catalog says current, the database and role exist: nothing to do')
  const verified = await migrateSchools(dbs.topology, { concurrency: 2, verify: true })
  t.same(verified.schools.map((s) => [s.slug, s.migrations.length, s.error === null]), [['kept', 0, true], ['tampered', 0, false]],
    '--verify finds the tampered database')
  t.match(verified.schools[1]?.error, /relation "lunch_week" already exists/, 'whose half-present schema fails the re-run, as it should')

  // A database dropped outright is noticed without --verify: it is listed per server.
  await dbs.admin.raw(`DROP DATABASE ${dbs.databaseName('kept')} WITH (FORCE)`)
  const recreated = await migrateSchools(dbs.topology, { concurrency: 2, useTemplate: false, only: ['kept'] })
  t.same(recreated.schools.map((s) => [s.database, s.migrations.length, s.error]), [['created', ALL, null]])
  t.same(await tables(dbs, 'kept'), LUNCH_TABLES)
})
