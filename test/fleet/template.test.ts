// Template provisioning on a cluster of this file's own: nobody else may
// connect to its 'tenant.template', so a clone here never falls back by
// accident, and the fallback is provoked on purpose.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import type { Knex } from 'knex'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { DEVELOPMENT_ROLE_SECRET, projectRoot, type EmbeddedPostgresConfig } from '../../src/config.js'
import { hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { provisionClone, TEMPLATE_DATABASE } from '../../src/fleet/template.js'
import { createDatabaseSettings } from '../../src/postgres/admin.js'
import { createKnex, databaseUrl, type PoolOptions } from '../../src/postgres/connection.js'
import { attachEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/postgres/embedded.js'
import { appMigrations } from '../../src/postgres/migrations.js'
import { POOLER_ROLE, schoolRoleName, schoolRolePassword, schoolRoleUrl } from '../../src/postgres/roles.js'
import type { Topology } from '../../src/postgres/topology.js'
import { clusterPort } from '../helpers/cluster.js'

const cluster: EmbeddedPostgresConfig = {
  dataDir: path.resolve(projectRoot, '.data/test-fleet-template'),
  port: clusterPort(3),
  password: 'postgres',
  maxConnections: 100,
  fsync: false
}

const LUNCH_TABLES = ['knex_migrations', 'knex_migrations_lock', 'lunch_day', 'lunch_week']

async function wipeCluster (): Promise<void> {
  await stopEmbeddedPostgres(cluster.dataDir)
  fs.rmSync(cluster.dataDir, { recursive: true, force: true })
  fs.rmSync(`${cluster.dataDir}.leases`, { recursive: true, force: true })
}

await wipeCluster() // leftovers of an interrupted run
t.teardown(wipeCluster)
const serverUrl = (await attachEmbeddedPostgres(cluster, { holder: 'fleet-template-test', log: () => {} })).url
const catalogUrl = databaseUrl(serverUrl, 'catalog')
const topology: Topology = { catalogUrl, servers: { default: serverUrl }, embedded: null, release: () => {} }
const admin = createKnex(serverUrl, { max: 2 })
t.teardown(async () => { await admin.destroy() })
await prepareCatalog(catalogUrl)
const migrations = await appMigrations.names()
const latest = migrations.at(-1)

async function addSchools (slugs: string[]): Promise<void> {
  const catalog = openCatalog(catalogUrl, 1)
  try {
    await catalog('schools').insert(slugs.map((slug) => ({ slug, name: `School ${slug}`, database_name: `tpl_${slug}` })))
  } finally {
    await catalog.destroy()
  }
}

async function withDb<T> (url: string, fn: (db: Knex) => Promise<T>, options: Partial<PoolOptions> = {}): Promise<T> {
  const db = createKnex(url, { max: 1, ...options })
  try {
    return await fn(db)
  } finally {
    await db.destroy()
  }
}

const asAdmin = async <T>(database: string, fn: (db: Knex) => Promise<T>): Promise<T> => await withDb(databaseUrl(serverUrl, database), fn)

async function tables (database: string): Promise<string[]> {
  return await asAdmin(database, async (db) => {
    const { rows } = await db.raw<{ rows: Array<{ tablename: string }> }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return rows.map((r) => r.tablename)
  })
}

async function recordedMigrations (database: string): Promise<string[]> {
  return await asAdmin(database, async (db) => (await db('knex_migrations').select('name').orderBy('id') as Array<{ name: string }>).map((r) => r.name))
}

/** Whether PUBLIC (every role) may connect to the database, as PostgreSQL itself decides. */
async function publicMayConnect (database: string): Promise<boolean> {
  const { rows } = await admin.raw<{ rows: Array<{ ok: boolean }> }>("SELECT has_database_privilege('public', ?, 'CONNECT') AS ok", [database])
  return rows[0]?.ok === true
}

/** The login error of `role` on `database`, or 'connected'. */
async function tryLogin (database: string, asDatabaseOfRole: string): Promise<string> {
  const url = new URL(schoolRoleUrl(serverUrl, asDatabaseOfRole, DEVELOPMENT_ROLE_SECRET))
  url.pathname = `/${encodeURIComponent(database)}`
  const client = new pg.Client({ connectionString: url.toString() })
  try {
    await client.connect()
    await client.query('SELECT 1')
    return 'connected'
  } catch (error) {
    return (error as Error).message
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * A database's relations that have a free-space or visibility map, and the
 * files in its folder that belong to none of its relations (say, a table
 * the template rewrote, copied before the old file was gone).
 */
async function extraFiles (database: string): Promise<{ maps: string[], strays: string[] }> {
  return await asAdmin(database, async (db) => {
    const maps = await db.raw<{ rows: Array<{ relname: string }> }>(
      "SELECT relname FROM pg_class WHERE NOT relisshared AND pg_relation_size(oid, 'fsm') + pg_relation_size(oid, 'vm') > 0 ORDER BY 1")
    const strays = await db.raw<{ rows: Array<{ file: string }> }>(
      `SELECT file FROM pg_ls_dir(format('base/%s', (SELECT oid FROM pg_database WHERE datname = current_database()))) AS file
       WHERE file NOT IN ('PG_VERSION', 'pg_filenode.map', 'pg_internal.init')
         AND substring(file FROM '^[0-9]+')::oid NOT IN (
           SELECT pg_relation_filenode(oid) FROM pg_class WHERE NOT relisshared AND pg_relation_filenode(oid) IS NOT NULL)
       ORDER BY 1`)
    return { maps: maps.rows.map((r) => r.relname), strays: strays.rows.map((r) => r.file) }
  })
}

/** Whether the database's folder holds pg_internal.init; read from another database, since connecting would write it. */
async function hasRelationCacheFile (database: string): Promise<boolean> {
  const { rows } = await admin.raw<{ rows: Array<{ found: boolean }> }>(
    "SELECT 'pg_internal.init' IN (SELECT pg_ls_dir(format('base/%s', oid))) AS found FROM pg_database WHERE datname = ?", [database])
  return rows[0]?.found ?? false
}

t.test('the first migrate creates the template; new schools are cloned from it, with their own privileges', async (t) => {
  const before = await admin.raw<{ rows: unknown[] }>('SELECT 1 FROM pg_database WHERE datname = ?', [TEMPLATE_DATABASE])
  t.equal(before.rows.length, 0, 'no template before the first migrate')

  await addSchools(['pine', 'oak', 'elm'])
  const report = await migrateSchools(topology, { concurrency: 3 })
  t.equal(hasFailures(report), false, JSON.stringify(report.schools))
  t.same(report.templates, { default: 'created' }, 'the template was created on the one server')
  t.equal(await hasRelationCacheFile(TEMPLATE_DATABASE), true, 'the template has a relation cache file, which every clone copies')
  t.same(report.schools.map((s) => [s.slug, s.database, s.role, s.migrations, s.error]), [
    ['elm', 'cloned', 'created', [], null],
    ['oak', 'cloned', 'created', [], null],
    ['pine', 'cloned', 'created', [], null]
  ], 'every new database is a clone with nothing left to migrate')

  const template = await admin.raw<{ rows: Array<{ datistemplate: boolean, datallowconn: boolean }> }>(
    'SELECT datistemplate, datallowconn FROM pg_database WHERE datname = ?', [TEMPLATE_DATABASE])
  t.same(template.rows, [{ datistemplate: true, datallowconn: true }], 'tenant.template exists and is marked as a template')
  t.equal(await publicMayConnect(TEMPLATE_DATABASE), false, 'PUBLIC has no CONNECT on the template')
  t.same(await tables(TEMPLATE_DATABASE), LUNCH_TABLES, 'the template is at the latest migration')
  t.same(await recordedMigrations(TEMPLATE_DATABASE), migrations)
  t.match(await tryLogin(TEMPLATE_DATABASE, 'tpl_pine'), /permission denied for database/, "a school's role cannot connect to the template")
  t.same((await extraFiles(TEMPLATE_DATABASE)).maps, [], 'the template was compacted: no table has a free-space or visibility map')

  for (const slug of ['pine', 'oak', 'elm']) {
    const database = `tpl_${slug}`
    t.same(await tables(database), LUNCH_TABLES, `${slug}: the clone has the lunch tables`)
    t.same(await recordedMigrations(database), migrations, `${slug}: and the migration history, copied from the template`)
    t.equal(await publicMayConnect(database), false, `${slug}: PUBLIC has no CONNECT on the clone`)
    const flags = await admin.raw<{ rows: Array<{ datistemplate: boolean }> }>('SELECT datistemplate FROM pg_database WHERE datname = ?', [database])
    t.same(flags.rows, [{ datistemplate: false }], `${slug}: the clone is not itself a template`)
    const { maps, strays } = await extraFiles(database)
    t.ok(maps.every((name) => name === 'pg_class'), `${slug}: nor has the clone, but for pg_class, which its grants may extend: ${maps.join(', ')}`)
    t.same(strays, [], `${slug}: no file of a table the template rewrote was copied`)
    const acl = await admin.raw<{ rows: Array<{ grantee: string }> }>(
      `SELECT coalesce(r.rolname, 'PUBLIC') AS grantee FROM pg_database d, aclexplode(d.datacl) a
       LEFT JOIN pg_roles r ON r.oid = a.grantee
       WHERE d.datname = ? AND a.privilege_type = 'CONNECT' ORDER BY 1`, [database])
    t.same(acl.rows.map((r) => r.grantee), ['postgres', schoolRoleName(database), POOLER_ROLE].sort(),
      `${slug}: the clone's datacl grants CONNECT to its owner, its role and the pooler's lookup only`)
  }

  // The school's own role, with the password migrate derived: reads and writes rows.
  const week = await withDb(schoolRoleUrl(serverUrl, 'tpl_pine', DEVELOPMENT_ROLE_SECRET), async (db) => {
    const { rows } = await db.raw<{ rows: Array<{ current_user: string }> }>('SELECT current_user')
    t.equal(rows[0]?.current_user, schoolRoleName('tpl_pine'), 'logged in as the school role')
    const [inserted] = await db('lunch_week').insert({ week_of: '2026-11-23' }).returning(['id']) as Array<{ id: string }>
    await db('lunch_day').insert({ lunch_week_id: inserted?.id, day: '2026-11-23', menu_details: 'soup' })
    await db('lunch_week').where({ id: inserted?.id }).update({ is_published: true })
    const ddl = await db.raw('CREATE TABLE intruder (x int)').then(() => 'created', (e: Error) => e.message)
    t.match(ddl, /permission denied/, 'the role still cannot run DDL in the clone')
    return await db('lunch_week').select('week_of', 'is_published')
  })
  t.same(week, [{ week_of: '2026-11-23', is_published: true }], "the school's role reads back what it wrote in lunch_week")
  t.equal(await tryLogin('tpl_oak', 'tpl_pine'), 'permission denied for database "tpl_oak"', "pine's role cannot connect to oak's clone")
  t.equal(await tryLogin('tpl_oak', 'tpl_oak'), 'connected', "oak's role can")

  const status = await withDb(catalogUrl, async (db) => await db('school_migration_status as m').join('schools as s', 's.id', 'm.school_id')
    .select('s.slug', 'm.migration', 'm.last_error').orderBy('s.slug'))
  t.same(status, ['elm', 'oak', 'pine'].map((slug) => ({ slug, migration: latest, last_error: null })),
    'a clone is recorded at the latest migration')
})

t.test('a template vacuumed since it was compacted is compacted again by the next run', async (t) => {
  await asAdmin(TEMPLATE_DATABASE, async (db) => { await db.raw('VACUUM') })
  t.not((await extraFiles(TEMPLATE_DATABASE)).maps.length, 0, 'VACUUM gave the template maps again')
  await addSchools(['birch'])
  const report = await migrateSchools(topology, { concurrency: 1 })
  t.same(report.templates, { default: 'up to date' }, 'compacting is not news in the summary')
  t.equal(await hasRelationCacheFile(TEMPLATE_DATABASE), true, 'the compaction deleted its relation cache file; the run wrote it again')
  t.same(report.schools.filter((s) => s.slug === 'birch').map((s) => [s.database, s.error]), [['cloned', null]], 'the new school is a clone')
  t.same((await extraFiles(TEMPLATE_DATABASE)).maps, [], 'the template has none again')
  const clone = await extraFiles('tpl_birch')
  t.ok(clone.maps.every((name) => name === 'pg_class'), `nor has the new clone, but for pg_class: ${clone.maps.join(', ')}`)
  t.same(clone.strays, [], 'and it has no file of a table the template rewrote')
})

async function roleExists (role: string): Promise<boolean> {
  return (await admin.raw<{ rows: unknown[] }>('SELECT 1 FROM pg_roles WHERE rolname = ?', [role])).rows.length > 0
}

t.test("the template's files are cloned by the kernel on PostgreSQL 18, or copied as before when told", async (t) => {
  t.same(createDatabaseSettings(180000, 'clone'), { file_copy_method: 'clone' }, 'PostgreSQL 18 and later: clone')
  t.same(createDatabaseSettings(170005, 'clone'), {}, 'before 18, which lacks the setting and would refuse the connection: nothing')
  t.same(createDatabaseSettings(180000, 'copy'), {}, "copy: the server's own way")
  const version = Number((await admin.raw<{ rows: Array<{ v: string }> }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v)
  const method = await withDb(serverUrl, async (db) => (await db.raw<{ rows: Array<{ method: string | null }> }>(
    "SELECT current_setting('file_copy_method', true) AS method")).rows[0]?.method, { settings: createDatabaseSettings(version, 'clone') })
  t.equal(method, version >= 180000 ? 'clone' : null, 'a pool given the settings starts every session with them')
  t.throws(() => createKnex(serverUrl, { max: 1, settings: { file_copy_method: 'clone -c work_mem=1GB' } }), /unsupported session setting/,
    'a value that would smuggle in another setting is refused')

  await addSchools(['kernel', 'copied'])
  for (const [slug, copyMethod] of [['kernel', 'clone'], ['copied', 'copy']] as const) {
    const report = await migrateSchools(topology, { concurrency: 1, only: [slug], copyMethod })
    t.same(report.schools.map((s) => [s.slug, s.database, s.migrations, s.error]), [[slug, 'cloned', [], null]], `${copyMethod}: a clone`)
    t.same(await tables(`tpl_${slug}`), LUNCH_TABLES, `${copyMethod}: with the lunch tables`)
    t.same(await recordedMigrations(`tpl_${slug}`), migrations, `${copyMethod}: and their history`)
    t.equal(await tryLogin(`tpl_${slug}`, `tpl_${slug}`), 'connected', `${copyMethod}: its role logs in`)
  }
})

t.test('the one-batch setup of a clone applies all or nothing', async (t) => {
  const database = 'tpl_batch'
  const role = schoolRoleName(database)
  await admin.raw(`CREATE DATABASE ${database} TEMPLATE "${TEMPLATE_DATABASE}"`)
  const provision = async (expected: string): Promise<boolean> => await withDb(databaseUrl(serverUrl, database), async (db) =>
    await provisionClone(db, database, role, schoolRolePassword(DEVELOPMENT_ROLE_SECRET, role), expected))

  t.equal(await provision('29991231_not_this_one'), false, 'a clone at another migration than expected is refused')
  t.equal(await roleExists(role), false, 'no role was created')
  t.equal(await publicMayConnect(database), true, 'nor was the database restricted')

  await admin.raw(`CREATE ROLE ${role}`)
  t.equal(await provision(latest ?? ''), false, 'a role that exists already stops the batch')
  t.equal(await publicMayConnect(database), true, 'again with nothing of it applied')
  await admin.raw(`DROP ROLE ${role}`)

  t.equal(await provision(latest ?? ''), true, 'as expected: applied')
  t.equal(await publicMayConnect(database), false, 'PUBLIC lost CONNECT')
  t.equal(await tryLogin(database, database), 'connected', 'the role logs in')
  const rows = await withDb(schoolRoleUrl(serverUrl, database, DEVELOPMENT_ROLE_SECRET), async (db) => await db('lunch_week').count('* as n'))
  t.same(rows, [{ n: '0' }], 'and reads the lunch tables')
})

t.test('a new school whose role already exists is cloned, then finished by the general path', async (t) => {
  const role = schoolRoleName('tpl_pre')
  await admin.raw(`CREATE ROLE ${role} NOLOGIN CREATEDB`)
  await addSchools(['pre'])
  const report = await migrateSchools(topology, { concurrency: 2, only: ['pre'] })
  t.same(report.schools.map((s) => [s.slug, s.database, s.role, s.migrations, s.error]), [['pre', 'cloned', 'updated', [], null]],
    'cloned, and the existing role given the password')
  t.equal(await publicMayConnect('tpl_pre'), false)
  t.equal(await tryLogin('tpl_pre', 'tpl_pre'), 'connected', 'its role logs in')
  const flags = await admin.raw<{ rows: unknown[] }>('SELECT rolcanlogin, rolcreatedb FROM pg_roles WHERE rolname = ?', [role])
  t.same(flags.rows, [{ rolcanlogin: true, rolcreatedb: false }], 'with the attributes of a school role, whatever it had before')
})

t.test('a template in use: the new school is created the plain way and migrated; the run does not fail', async (t) => {
  const holder = new pg.Client({ connectionString: databaseUrl(serverUrl, TEMPLATE_DATABASE), application_name: 'template-holder' })
  await holder.connect()
  t.teardown(async () => { await holder.end().catch(() => {}) })
  await holder.query('SELECT 1')

  await addSchools(['busy'])
  const report = await migrateSchools(topology, { concurrency: 2, only: ['busy'] })
  t.equal(hasFailures(report), false, JSON.stringify(report.schools))
  t.same(report.schools.map((s) => [s.slug, s.database, s.migrations, s.error]), [['busy', 'created', migrations, null]],
    'created, not cloned, and its migrations applied')
  t.same(await tables('tpl_busy'), LUNCH_TABLES)
  t.same(await recordedMigrations('tpl_busy'), migrations)
  t.equal(await publicMayConnect('tpl_busy'), false)
  t.equal(await tryLogin('tpl_busy', 'tpl_busy'), 'connected', 'its role logs in')
  const stillThere = await holder.query('SELECT current_database() AS db')
  t.equal(stillThere.rows[0]?.db, TEMPLATE_DATABASE, "the holder's connection was left alone")
})

t.test('useTemplate: false creates the plain way', async (t) => {
  await addSchools(['plain'])
  const report = await migrateSchools(topology, { concurrency: 2, only: ['plain'], useTemplate: false })
  t.same(report.templates, {}, 'the template was not even looked at')
  t.same(report.schools.map((s) => [s.slug, s.database, s.migrations, s.error]), [['plain', 'created', migrations, null]])
  t.same(await tables('tpl_plain'), LUNCH_TABLES)
})
