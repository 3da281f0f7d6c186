// When the template's history and the migration source disagree: after a
// rollback, a migration file removed, a template ahead of this release.
// A cluster of this file's own, since these tests drop and rebuild the
// template that every other migrate run on a shared server clones from.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import type { Knex } from 'knex'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { projectRoot, type EmbeddedPostgresConfig } from '../../src/config.js'
import { hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { TEMPLATE_DATABASE, templateStates } from '../../src/fleet/template.js'
import { createKnex, databaseUrl } from '../../src/postgres/connection.js'
import { attachEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/postgres/embedded.js'
import type { Topology } from '../../src/postgres/topology.js'
import { clusterPort } from '../helpers/cluster.js'
import { BASE, baselineMigrations } from '../helpers/migration-copies.js'

const cluster: EmbeddedPostgresConfig = {
  dataDir: path.resolve(projectRoot, '.data/test-template-history'),
  port: clusterPort(5),
  password: 'postgres',
  maxConnections: 100,
  fsync: false
}
const ALLERGENS = '20261201000000_add_allergens'

async function wipe (): Promise<void> {
  await stopEmbeddedPostgres(cluster.dataDir)
  for (const dir of [cluster.dataDir, `${cluster.dataDir}.leases`]) fs.rmSync(dir, { recursive: true, force: true })
}

await wipe()
t.teardown(wipe)
// The app's baseline, copied, so that this file can add and remove a migration.
const migrations = baselineMigrations(t, 'test-template-history-migrations')
const { source } = migrations

const serverUrl = (await attachEmbeddedPostgres(cluster, { holder: 'template-history-test', log: () => {} })).url
const catalogUrl = databaseUrl(serverUrl, 'catalog')
const topology: Topology = { catalogUrl, servers: { default: serverUrl }, embedded: null, release: () => {} }
await prepareCatalog(catalogUrl)

async function addSchools (slugs: string[]): Promise<void> {
  const catalog = openCatalog(catalogUrl, 1)
  try {
    await catalog('schools').insert(slugs.map((slug) => ({ slug, name: `School ${slug}`, database_name: `th_${slug}` })))
  } finally {
    await catalog.destroy()
  }
}

async function onDatabase<T> (database: string, fn: (db: Knex) => Promise<T>): Promise<T> {
  const db = createKnex(databaseUrl(serverUrl, database), { max: 1 })
  try {
    return await fn(db)
  } finally {
    await db.destroy()
  }
}

const history = async (database: string): Promise<string[]> =>
  await onDatabase(database, async (db) => (await db('knex_migrations').select('name').orderBy('id') as Array<{ name: string }>).map((r) => r.name))

const columns = async (database: string, table: string): Promise<string[]> => await onDatabase(database, async (db) => {
  const { rows } = await db.raw<{ rows: Array<{ column_name: string }> }>(
    'SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position', [table])
  return rows.map((r) => r.column_name)
})

/** What a newer release would leave behind: a migration this source does not have. */
async function recordForeignMigration (name: string): Promise<void> {
  await onDatabase(TEMPLATE_DATABASE, async (db) => await db('knex_migrations').insert({ name, batch: 99, migration_time: new Date() }))
}

const run = async (options: Partial<Parameters<typeof migrateSchools>[1]> = {}): Promise<Awaited<ReturnType<typeof migrateSchools>>> =>
  await migrateSchools(topology, { concurrency: 2, migrations: source, ...options })

t.test('migrate, add a migration, migrate, roll back, remove the file: the next school is still cloned', async (t) => {
  await addSchools(['a1', 'a2'])
  const first = await run()
  t.equal(hasFailures(first), false, JSON.stringify(first.schools))
  t.same(first.templates, { default: 'created' })

  migrations.addAllergens(ALLERGENS)
  const up = await run()
  t.equal(hasFailures(up), false, JSON.stringify(up.schools))
  t.same(up.schools.map((s) => [s.slug, s.migrations]), [['a1', [ALLERGENS]], ['a2', [ALLERGENS]]])
  t.same(up.templates, { default: '1 migration(s) applied' }, 'the template moved on with the schools')

  const back = await run({ rollback: {} })
  t.equal(hasFailures(back), false, JSON.stringify(back.schools))
  t.same(back.schools.map((s) => [s.slug, s.migrations]), [['a1', [ALLERGENS]], ['a2', [ALLERGENS]]])
  t.same(back.templates, { default: `rolled back 1 migration(s): ${ALLERGENS}` }, 'the rollback says what it did to the template')
  t.same(await history(TEMPLATE_DATABASE), [BASE], "the template's history lost the rolled-back migration")
  t.notOk((await columns(TEMPLATE_DATABASE, 'lunch_day')).includes('allergens'), 'and its column')

  migrations.remove(ALLERGENS)
  await addSchools(['a3'])
  const after = await run()
  t.equal(hasFailures(after), false, JSON.stringify(after.schools))
  t.same(after.templates, { default: 'up to date' }, 'no complaint about a missing file')
  t.same(after.schools.filter((s) => s.slug === 'a3').map((s) => [s.database, s.action, s.migrations]), [['cloned', 'clone', []]],
    'the new school is cloned, with nothing left to migrate')
  t.same(await history('th_a3'), await source.names(), "its history equals the source's")
  t.same(await templateStates(topology.servers, source), { default: `current (at ${BASE})` }, '--status shows the template current')
})

t.test('a template ahead of the migrations is rebuilt, and the next school is cloned', async (t) => {
  await recordForeignMigration('20991231000000_from_a_newer_release')
  t.match(await templateStates(topology.servers, source), { default: /^its history does not match the migrations \(the next migrate rebuilds it\)/ },
    '--status shows the mismatch')

  await addSchools(['b1'])
  const dry = await run({ dryRun: true, only: ['b1'] })
  t.match(dry.templates, { default: /does not match/ }, 'the dry run shows it too')
  t.same(dry.schools.map((s) => [s.action, s.database]), [['clone', 'missing']], 'and plans the clone a real run makes')
  t.same(await history(TEMPLATE_DATABASE), [BASE, '20991231000000_from_a_newer_release'], 'the dry run changed nothing')

  const report = await run({ only: ['b1'] })
  t.equal(hasFailures(report), false, JSON.stringify(report.schools))
  t.same(report.templates, { default: 'rebuilt (its history did not match the migrations)' })
  t.same(report.schools.map((s) => [s.database, s.migrations]), [['cloned', []]])
  t.same(await history('th_b1'), await source.names())
  t.same(await history(TEMPLATE_DATABASE), await source.names(), 'the rebuilt template records exactly the source')
  const { rows } = await onDatabase('postgres', async (db) =>
    await db.raw<{ rows: unknown[] }>('SELECT datistemplate FROM pg_database WHERE datname = ?', [TEMPLATE_DATABASE]))
  t.same(rows, [{ datistemplate: true }], 'and is marked a template again')
})

t.test('a template that cannot be dropped leaves the run on the plain path, with a message', async (t) => {
  await recordForeignMigration('20991231000000_from_a_newer_release')
  const holder = new pg.Client({ connectionString: databaseUrl(serverUrl, TEMPLATE_DATABASE) })
  await holder.connect()
  t.teardown(async () => { await holder.end().catch(() => {}) })

  await addSchools(['c1'])
  const report = await run({ only: ['c1'] })
  t.equal(hasFailures(report), false, JSON.stringify(report.schools))
  t.match(report.templates, { default: /^not used: its history did not match the migrations, and it could not be rebuilt: .*being accessed by other users/ })
  t.same(report.schools.map((s) => [s.database, s.migrations]), [['created', await source.names()]], 'created plainly and migrated')
  t.same(await history('th_c1'), await source.names())
  const { rows } = await onDatabase('postgres', async (db) =>
    await db.raw<{ rows: unknown[] }>('SELECT datistemplate FROM pg_database WHERE datname = ?', [TEMPLATE_DATABASE]))
  t.same(rows, [{ datistemplate: true }], 'the template keeps its flag after the failed drop')

  await holder.end()
  await addSchools(['c2'])
  const next = await run({ only: ['c2'] })
  t.same(next.templates, { default: 'rebuilt (its history did not match the migrations)' }, 'once free, the next run rebuilds it')
  t.same(next.schools.map((s) => s.database), ['cloned'])
})
