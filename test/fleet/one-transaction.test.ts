// The quick path of rollouts and rollbacks (src/fleet/one-transaction.ts):
// a school exactly where the catalog says gets its migrations, their
// history rows and its grants in one transaction; anything unusual goes to
// knex's migrator with nothing changed. Schools `onetx_*` on the suite's
// server.
import t from 'tap'
import type { Knex } from 'knex'
import { schoolsRepository } from '../../src/catalog/schools.js'
import { DEVELOPMENT_ROLE_SECRET } from '../../src/config.js'
import { hasFailures, migrateSchools, type MigrateOptions } from '../../src/fleet/migrate-schools.js'
import { migrateInOneTransaction, type StepOf } from '../../src/fleet/one-transaction.js'
import { createKnex } from '../../src/postgres/connection.js'
import { schoolAccessSql, schoolRoleName, schoolRoleUrl } from '../../src/postgres/roles.js'
import { testCatalog, withDatabase } from '../helpers/databases.js'
import { BASE, baselineMigrations } from '../helpers/migration-copies.js'

const migrations = baselineMigrations(t, 'test-one-transaction-migrations')
const { source } = migrations
const { dbs, catalog } = await testCatalog(t, 'onetx', ['elm', 'oak', 'fir', 'ash'])
// No template: the server's is shared with other test files running the project's own migrations.
const run = async (options: Partial<MigrateOptions> = {}): Promise<Awaited<ReturnType<typeof migrateSchools>>> =>
  await migrateSchools(dbs.topology, { concurrency: 2, migrations: source, useTemplate: false, ...options })

const onSchool = async <T>(slug: string, fn: (db: Knex) => Promise<T>): Promise<T> => await withDatabase(dbs.serverUrl, dbs.databaseName(slug), fn)
const history = async (slug: string): Promise<Array<{ name: string, batch: number }>> =>
  await onSchool(slug, async (db) => await db('knex_migrations').select('name', 'batch').orderBy('id') as Array<{ name: string, batch: number }>)
const tables = async (slug: string): Promise<string[]> => await onSchool(slug, async (db) =>
  (await db.raw<{ rows: Array<{ name: string }> }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).rows.map((r) => r.name))
const recorded = async (slug: string): Promise<string | null> =>
  (await schoolsRepository(catalog).listWithStatus({ slugs: [slug] }))[0]?.migration ?? null

/**
 * The transaction that last wrote knex's lock row. knex's migrator sets and
 * clears that row on every run; the quick path only reads it, so an
 * unchanged value after a run shows which path the school took.
 */
const lockRowWriter = async (slug: string): Promise<string> => await onSchool(slug, async (db) =>
  (await db.raw<{ rows: Array<{ xmin: string }> }>('SELECT xmin::text FROM knex_migrations_lock')).rows[0]?.xmin ?? 'no row')

/** The quick path on one school, with the grants migrate would send. */
const quick = async (slug: string, stepOf: StepOf): Promise<unknown> => await onSchool(slug, async (db) => {
  const database = dbs.databaseName(slug)
  return await migrateInOneTransaction(db, source, stepOf, schoolAccessSql(database, schoolRoleName(database)))
})

/** A migration that creates table `name`, school data the role must reach, and drops it on the way down. */
const createTable = (name: string): string => `import type { Knex } from 'knex'
export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('${name}', (table) => { table.increments('id'); table.text('body') })
}
export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('${name}')
}
`

t.notOk(hasFailures(await run()), 'the schools start at the baseline')

t.test('two new migrations reach every school in one batch, and the role may use the new table', async (t) => {
  const added = ['20261210000000_add_allergens', '20261210000001_lunch_note']
  migrations.addAllergens(added[0]!)
  migrations.write(added[1]!, createTable('lunch_note'))
  const writer = await lockRowWriter('elm')
  const report = await run({ only: ['elm', 'oak'] })
  t.notOk(hasFailures(report))
  t.same(report.schools.map((s) => [s.slug, s.migrations, s.role, s.error]), [['elm', added, 'existed', null], ['oak', added, 'existed', null]],
    'each school lists both, in order')
  for (const slug of ['elm', 'oak']) {
    t.same(await history(slug), [{ name: BASE, batch: 1 }, ...added.map((name) => ({ name, batch: 2 }))], `${slug}: one new batch for both, as knex records a run`)
    t.equal(await recorded(slug), added[1], `${slug}: the catalog records the newest`)
  }
  t.equal(await lockRowWriter('elm'), writer, "knex's migrator did not run: the quick path did it")
  const db = createKnex(schoolRoleUrl(dbs.serverUrl, dbs.databaseName('oak'), DEVELOPMENT_ROLE_SECRET), { max: 1 })
  try {
    await db('lunch_note').insert({ body: 'no nuts this week' })
    t.same(await db('lunch_note').select('body'), [{ body: 'no nuts this week' }], "oak's role writes and reads the table the rollout added")
    t.same(await db('lunch_day').select('allergens').limit(1), [], 'and the new column')
  } finally {
    await db.destroy()
  }
})

t.test('anything unusual is left to the general path, with nothing changed', async (t) => {
  // fir and ash are still at the baseline; the two migrations above are pending for them.
  const pending = (await source.names()).slice(1)
  const upFrom = (done: string[], names: string[]): StepOf => (history) =>
    history.join() === done.join() ? { direction: 'up', names } : null
  const untouched = async (slug: string, what: string): Promise<void> => {
    t.same(await history(slug), [{ name: BASE, batch: 1 }], `${what}: the history is as it was`)
    t.same(await tables(slug), ['knex_migrations', 'knex_migrations_lock', 'lunch_day', 'lunch_week'], `${what}: no table was added`)
  }

  t.equal(await quick('fir', upFrom([BASE, '20261201000000_elsewhere'], pending)), null, 'a history other than the expected one')
  await untouched('fir', 'other history')

  t.equal(await quick('fir', () => { throw new Error('refused') }), null, 'a step that refuses the history')
  await untouched('fir', 'a refusal')

  await onSchool('fir', async (db) => await db('knex_migrations_lock').update({ is_locked: 1 }))
  t.equal(await quick('fir', upFrom([BASE], pending)), null, "knex's lock row set")
  await untouched('fir', 'lock row set')
  await onSchool('fir', async (db) => await db('knex_migrations_lock').update({ is_locked: 0 }))

  migrations.write('20261210000002_fails', `export async function up (knex: unknown): Promise<void> {
  await (knex as { schema: { createTable: (name: string, fn: () => void) => Promise<void> } }).schema.createTable('half_done', () => {})
  throw new Error('this migration fails after its first statement')
}
export async function down (): Promise<void> {}
`)
  t.equal(await quick('fir', upFrom([BASE], [...pending, '20261210000002_fails'])), null, 'a migration that throws')
  await untouched('fir', 'a failed migration')
  migrations.remove('20261210000002_fails')

  migrations.write('20261210000003_outside', `export const config = { transaction: false }
export async function up (): Promise<void> {}
export async function down (): Promise<void> {}
`)
  t.equal(await quick('fir', upFrom([BASE], [...pending, '20261210000003_outside'])), null, 'a migration that asks to run outside a transaction')
  await untouched('fir', 'outside a transaction')

  t.equal(await quick('fir', upFrom([BASE], ['20261299000000_no_such_file'])), null, 'a migration the source does not have')
  await untouched('fir', 'no such file')

  // The general path then migrates it as usual: the outside-a-transaction migration included.
  const writer = await lockRowWriter('fir')
  const report = await run({ only: ['fir'] })
  t.not(await lockRowWriter('fir'), writer, "knex's migrator ran, and wrote its lock row")
  t.same(report.schools.map((s) => [s.slug, s.migrations, s.error]), [['fir', [...pending, '20261210000003_outside'], null]], 'the run then migrates fir')
  t.equal(await recorded('fir'), '20261210000003_outside')
  migrations.remove('20261210000003_outside')
})

t.test('a rollback takes one transaction too, and never the baseline', async (t) => {
  // elm and oak are at lunch_note; rolling back goes to add_allergens.
  t.same(await quick('oak', () => ({ direction: 'down', names: ['20261210000001_lunch_note'] })),
    { names: ['20261210000001_lunch_note'], latest: '20261210000000_add_allergens' }, 'one school undone by the quick path, saying where it is now')
  const report = await run({ only: ['elm', 'oak'], rollback: {} })
  t.notOk(hasFailures(report))
  t.same(report.schools.map((s) => [s.slug, s.migrations]), [['elm', ['20261210000001_lunch_note']], ['oak', []]], 'a run then undoes it where it is still applied')
  for (const slug of ['elm', 'oak']) {
    t.same((await history(slug)).map((row) => row.name), [BASE, '20261210000000_add_allergens'], `${slug}: lunch_note's row is gone`)
    t.notOk((await tables(slug)).includes('lunch_note'), `${slug}: and its table`)
    t.equal(await recorded(slug), '20261210000000_add_allergens', `${slug}: the catalog records where it is now`)
  }
  const again = await run({ only: ['elm'], rollback: { to: BASE } })
  t.same(again.schools.map((s) => [s.slug, s.migrations, s.error]), [['elm', ['20261210000000_add_allergens'], null]], 'back to the baseline')
  const refused = await run({ only: ['elm'], rollback: { to: BASE } })
  t.same(refused.schools.map((s) => [s.slug, s.migrations, s.error]), [['elm', [], null]], 'again: nothing left to undo above the baseline')
  t.same((await history('elm')).map((row) => row.name), [BASE], 'elm keeps its baseline')
  t.ok((await tables('elm')).includes('lunch_day'), 'and its tables')
})

t.test('a school whose history differs from the catalog is reported by the general path, as before', async (t) => {
  // ash's database holds a migration this release does not know (a newer release ran there).
  await onSchool('ash', async (db) => await db('knex_migrations').insert({ name: '20261205000000_from_a_newer_release', batch: 2, migration_time: new Date() }))
  const report = await run({ only: ['ash'] })
  t.match(report.schools, [{ slug: 'ash', migrations: [], error: /migration directory is corrupt.*20261205000000_from_a_newer_release/ }],
    "knex's own refusal names the unknown migration")
  t.same(await tables('ash'), ['knex_migrations', 'knex_migrations_lock', 'lunch_day', 'lunch_week'], 'nothing was applied')
})
