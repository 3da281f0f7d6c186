import t from 'tap'
import pg from 'pg'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { roleKeyId, schoolRoleName, schoolRolePassword, schoolRoleUrl } from '../../src/postgres/roles.js'
import { testApp } from '../helpers/app.js'
import { testDatabases, withDatabase } from '../helpers/databases.js'
import { DEVELOPMENT_ROLE_SECRET } from '../../src/config.js'

/** Tries one login; resolves to 'ok' or the PostgreSQL error code. */
async function login (url: string, sql = 'SELECT 1'): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query(sql)
    return 'ok'
  } catch (error) {
    return (error as { code?: string }).code ?? (error as Error).message
  } finally {
    await client.end().catch(() => {})
  }
}

t.test('role names fit PostgreSQL and differ per database', async (t) => {
  t.equal(schoolRoleName('school_pinewood'), 'school_school_pinewood')
  const long = schoolRoleName('a'.repeat(63))
  t.equal(Buffer.byteLength(long), 63)
  t.not(long, schoolRoleName(`${'a'.repeat(62)}b`), 'long names still differ')
  t.not(schoolRolePassword('x'.repeat(32), 'r1'), schoolRolePassword('x'.repeat(32), 'r2'))
  t.not(schoolRolePassword('x'.repeat(32), 'r1'), schoolRolePassword('y'.repeat(32), 'r1'), 'the secret changes the password')
})

t.test('each school database is reachable only with its own role', async (t) => {
  const dbs = await testDatabases(t, 'roles')
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  await catalog('schools').insert(['alpha', 'beta'].map((slug) => ({ slug, name: slug, database_name: dbs.databaseName(slug) })))

  const secret = 's'.repeat(40)
  const report = await migrateSchools(dbs.topology, { concurrency: 2, roleSecret: secret })
  t.equal(hasFailures(report), false)
  t.same(report.schools.map((s) => s.role), ['created', 'created'])

  const alphaDb = dbs.databaseName('alpha')
  const betaDb = dbs.databaseName('beta')
  const alphaUrl = schoolRoleUrl(dbs.serverUrl, alphaDb, secret)
  const alphaOnBeta = new URL(alphaUrl)
  alphaOnBeta.pathname = `/${betaDb}`

  t.equal(await login(alphaUrl, 'SELECT count(*) FROM lunch_week'), 'ok', "alpha's role reads alpha's tables")
  t.equal(await login(alphaOnBeta.toString()), '42501', "alpha's role cannot connect to beta's database")
  const onCatalog = new URL(alphaUrl)
  onCatalog.pathname = `/${dbs.databaseName('catalog')}`
  t.equal(await login(onCatalog.toString()), '42501', 'nor to the catalog')
  t.equal(await login(alphaUrl, 'CREATE TABLE intruder (x int)'), '42501', 'no DDL')
  t.equal(await login(alphaUrl, "INSERT INTO knex_migrations (name, batch, migration_time) VALUES ('x', 1, now())"), '42501', "no writing knex's history")
  t.equal(await login(alphaUrl, "INSERT INTO lunch_week (week_of) VALUES ('2026-11-23')"), 'ok', 'row writes are allowed')
  const wrongPassword = new URL(alphaUrl)
  wrongPassword.password = schoolRolePassword('w'.repeat(40), schoolRoleName(alphaDb))
  t.equal(await login(wrongPassword.toString()), '28P01', 'another secret does not log in')

  const publicAcl = await withDatabase(dbs.serverUrl, 'postgres', async (db) =>
    (await db.raw('SELECT datacl::text AS acl FROM pg_database WHERE datname = ?', [alphaDb])).rows[0].acl as string)
  t.notMatch(publicAcl, /(^|[{,])=[^,}]*c/, 'PUBLIC has no CONNECT on the school database')
  t.notMatch(publicAcl, /(^|[{,])=[^,}]*T/, 'nor TEMPORARY')

  const row = await catalog('schools').where({ slug: 'alpha' }).first()
  t.equal(row.role_key_id, roleKeyId(secret), 'the catalog records which secret set the password')
  t.notMatch(JSON.stringify(row), new RegExp(schoolRolePassword(secret, schoolRoleName(alphaDb)).slice(0, 12)), 'but not the password')
  const stored = await withDatabase(dbs.serverUrl, 'postgres', async (db) =>
    (await db.raw('SELECT rolpassword FROM pg_authid WHERE rolname = ?', [schoolRoleName(alphaDb)])).rows[0].rolpassword as string)
  t.match(stored, /^SCRAM-SHA-256\$1:[A-Za-z0-9+/=]{24}\$/, 'PostgreSQL holds only a SCRAM verifier, with 1 iteration and a 16-byte salt')

  const again = await migrateSchools(dbs.topology, { concurrency: 2, roleSecret: secret })
  t.same(again.schools.map((s) => s.role), ['existed', 'existed'], 'a re-run leaves the roles alone')

  // Rotation: a new secret; migrate notices the key id and sets new passwords.
  const rotated = 'r'.repeat(40)
  const dry = await migrateSchools(dbs.topology, { concurrency: 2, roleSecret: rotated, dryRun: true })
  t.same(dry.schools.map((s) => s.role), ['updated', 'updated'], 'a dry run shows the passwords it would set')
  t.equal(await login(alphaUrl), 'ok', 'and sets none')
  const rotation = await migrateSchools(dbs.topology, { concurrency: 2, roleSecret: rotated })
  t.same(rotation.schools.map((s) => s.role), ['updated', 'updated'])
  t.equal(await login(alphaUrl), '28P01', 'the old password no longer works')
  t.equal(await login(schoolRoleUrl(dbs.serverUrl, alphaDb, rotated)), 'ok', 'the new one does')
  t.equal((await catalog('schools').where({ slug: 'alpha' }).first()).role_key_id, roleKeyId(rotated))
})

t.test('the API connects to a school database as that school\'s role only', async (t) => {
  const { app, dbs, auth } = await testApp(t, 'rolesapi', { schools: ['alpha', 'beta'] })
  for (const slug of ['alpha', 'beta']) {
    t.equal((await app.inject({ url: '/api/lunch-weeks', headers: auth(slug) })).statusCode, 200)
  }
  const { rows } = await dbs.admin.raw(
    "SELECT datname, usename FROM pg_stat_activity WHERE application_name = 'school-lunch:api' AND datname LIKE 'rolesapi!_%' ESCAPE '!' ORDER BY datname")
  t.ok(rows.length >= 2, 'the pools are connected')
  for (const { datname, usename } of rows as Array<{ datname: string, usename: string }>) {
    t.equal(usename, schoolRoleName(datname), `${datname} is used by its own role`)
  }
  t.equal(schoolRoleUrl(dbs.serverUrl, dbs.databaseName('alpha'), DEVELOPMENT_ROLE_SECRET).includes('postgres:postgres@'), false,
    'never the admin user')
})

t.test('a school database named like PostgreSQL\'s own is refused before any SQL', async (t) => {
  const dbs = await testDatabases(t, 'rolesres')
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  await t.rejects(catalog('schools').insert({ slug: 'sneaky', name: 'Sneaky', database_name: 'postgres' }), /schools_database_name_not_reserved/)
  // With the constraint gone, the code still refuses.
  await catalog.raw('ALTER TABLE schools DROP CONSTRAINT schools_database_name_not_reserved')
  await catalog('schools').insert({ slug: 'sneaky', name: 'Sneaky', database_name: 'template1' })
  const report = await migrateSchools(dbs.topology, { concurrency: 1 })
  t.match(report.schools[0]?.error, /Database name "template1" is reserved/)
  const tables = await withDatabase(dbs.serverUrl, 'template1', async (db) =>
    (await db.raw("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows as unknown[])
  t.same(tables, [], 'template1 was not migrated')
})
