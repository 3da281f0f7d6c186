import path from 'node:path'
import t from 'tap'
import type { Knex } from 'knex'
import { nextMonday } from '../../scripts/tasks/publish-next-week.js'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { projectRoot } from '../../src/config.js'
import { hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { listDatabases } from '../../src/postgres/admin.js'
import { appMigrations } from '../../src/postgres/migrations.js'
import { schoolRoleName } from '../../src/postgres/roles.js'
import { testDatabases, withDatabase, type TestDatabases } from '../helpers/databases.js'
import { runScript, type RunResult } from '../helpers/run.js'

/** A line of a stack trace: operators' errors must come without one. */
const STACK = /^\s+at .+:\d+:\d+\)?$/m

function cli (env: Record<string, string>) {
  return async (...args: string[]): Promise<RunResult> => await runScript('scripts/schools.ts', args, env)
}

async function roleExists (admin: Knex, role: string): Promise<boolean> {
  const { rows } = await admin.raw<{ rows: unknown[] }>('SELECT 1 FROM pg_roles WHERE rolname = ?', [role])
  return rows.length > 0
}

async function databaseExists (dbs: TestDatabases, name: string): Promise<boolean> {
  return (await listDatabases(dbs.admin)).has(name)
}

t.test('add, list, suspend, resume and drop', async (t) => {
  const dbs = await testDatabases(t, 'sc')
  const run = cli(dbs.env)
  const pinewood = dbs.databaseName('pinewood')

  // The catalog does not exist yet: add creates it.
  const added = await run('add', 'pinewood', '--name', 'Pinewood Elementary', '--database', pinewood)
  t.equal(added.code, 0, added.stdout + added.stderr)
  t.match(added.stdout, `Added school pinewood (Pinewood Elementary) on server default, database ${pinewood}.`)
  t.match(added.stdout, /Provisioned: database (created|created from the template), role created, /)
  t.equal(await databaseExists(dbs, pinewood), true, 'its database exists')
  t.equal(await roleExists(dbs.admin, schoolRoleName(pinewood)), true, 'its role exists')
  const applied = await withDatabase(dbs.serverUrl, pinewood, async (db) => await db('knex_migrations').orderBy('id').pluck('name'))
  t.same(applied, await appMigrations.names(), 'it is at the latest migration')

  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  t.match(await catalog('schools').where({ slug: 'pinewood' }).first(),
    { name: 'Pinewood Elementary', database_name: pinewood, server: 'default', status: 'active' })

  const [dupSlug, dupDatabase, badSlug, reserved, unknownServer, noName, blankName] = await Promise.all([
    run('add', 'pinewood', '--name', 'Again', '--database', dbs.databaseName('again')),
    run('add', 'again', '--name', 'Again', '--database', pinewood),
    run('add', 'Pine Wood!', '--name', 'Pine Wood'),
    run('add', 'again', '--name', 'Again', '--database', 'template1'),
    run('add', 'again', '--name', 'Again', '--server', 'nowhere'),
    run('add', 'again'),
    run('add', 'again', '--name', '   ')
  ])
  t.equal(dupSlug.code, 1, 'a duplicate slug fails')
  t.match(dupSlug.stderr, 'School "pinewood" already exists')
  t.equal(dupDatabase.code, 1, 'a duplicate database fails')
  t.match(dupDatabase.stderr, `Database "${pinewood}" already belongs to school "pinewood"`)
  t.equal(badSlug.code, 2, 'a bad slug is a bad command line')
  t.match(badSlug.stderr, 'School slug "Pine Wood!" is not allowed')
  t.equal(reserved.code, 2)
  t.match(reserved.stderr, 'Database name "template1" is reserved by PostgreSQL')
  t.equal(unknownServer.code, 2, 'an unknown server is a bad command line')
  t.match(unknownServer.stderr, 'Unknown server "nowhere": TENANT_SERVERS names default')
  t.equal(noName.code, 2)
  t.match(noName.stderr, 'add needs --name')
  t.equal(blankName.code, 2)
  t.match(blankName.stderr, 'School name must be 1 to 200 characters')
  for (const result of [dupSlug, dupDatabase, badSlug, reserved, unknownServer, noName, blankName]) {
    t.notMatch(result.stderr, STACK, 'no stack trace')
  }
  t.same(await catalog('schools').pluck('slug'), ['pinewood'], 'no refused school reached the catalog')
  t.equal(await databaseExists(dbs, dbs.databaseName('again')), false)

  // Without --database, the name comes from the slug; --no-migrate creates nothing.
  const plain = await run('add', 'maple-grove', '--name', 'Maple Grove', '--no-migrate')
  t.equal(plain.code, 0, plain.stderr)
  t.match(plain.stdout, 'on server default, database school_maple_grove.')
  t.match(plain.stdout, 'Not provisioned (--no-migrate)')
  t.equal((await catalog('schools').where({ slug: 'maple-grove' }).first())?.database_name, 'school_maple_grove')
  t.equal(await databaseExists(dbs, 'school_maple_grove'), false)
  // The onboarding SQL of docs/operators.md ("Adding a school") works beside the command.
  await catalog.raw(`INSERT INTO schools (slug, name, database_name) VALUES ('birch', 'Birch', '${dbs.databaseName('birch')}')`)

  const all = await run('list')
  t.equal(all.code, 0, all.stderr)
  t.match(all.stdout, /^pinewood\s+default\s+active\s+current\s/m)
  t.match(all.stdout, /^maple-grove\s+default\s+active\s+never\s/m)
  t.match(all.stdout, /^birch\s+default\s+active\s+never\s/m)
  t.match(all.stdout, '3 school(s): 1 current, 0 behind, 0 failed, 2 never.')
  const never = await run('list', '--state', 'never')
  t.equal(never.code, 0)
  t.notMatch(never.stdout, /pinewood/)
  t.match(never.stdout, '2 school(s): 0 current, 0 behind, 0 failed, 2 never.')
  const onOther = await run('list', '--server', 'other')
  t.match(onOther.stdout, '0 school(s)')

  const suspended = await run('suspend', 'pinewood')
  t.equal(suspended.code, 0, suspended.stderr)
  t.match(suspended.stdout, 'School pinewood is now suspended.')
  t.equal((await catalog('schools').where({ slug: 'pinewood' }).first())?.status, 'suspended')
  const twice = await run('suspend', 'pinewood')
  t.equal(twice.code, 0)
  t.match(twice.stdout, 'was already suspended; nothing changed')
  const listSuspended = await run('list', '--status', 'suspended')
  t.match(listSuspended.stdout, /^pinewood\s+default\s+suspended\s+current\s/m)
  t.notMatch(listSuspended.stdout, /birch/)
  const unknown = await run('suspend', 'nosuch')
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, 'Unknown school "nosuch"')
  t.notMatch(unknown.stderr, STACK)
  const resumed = await run('resume', 'pinewood')
  t.equal(resumed.code, 0)
  t.equal((await catalog('schools').where({ slug: 'pinewood' }).first())?.status, 'active')

  const unconfirmed = await run('drop', 'pinewood')
  t.equal(unconfirmed.code, 2, 'drop without --yes is refused')
  t.match(unconfirmed.stderr, `database ${pinewood} on server default`)
  t.match(unconfirmed.stderr, `role ${schoolRoleName(pinewood)}`)
  t.match(unconfirmed.stderr, 'The school is active: suspend it first')
  const whileActive = await run('drop', 'pinewood', '--yes')
  t.equal(whileActive.code, 1, 'an active school is not dropped')
  t.match(whileActive.stderr, 'School "pinewood" is active: suspend it first')
  t.notMatch(whileActive.stderr, STACK)
  t.equal(await databaseExists(dbs, pinewood), true, 'nothing was removed')
  t.equal(await roleExists(dbs.admin, schoolRoleName(pinewood)), true)
  t.equal((await catalog('schools').where({ slug: 'pinewood' })).length, 1)

  t.equal((await run('suspend', 'pinewood')).code, 0)
  const id = (await catalog('schools').where({ slug: 'pinewood' }).first('id'))?.id
  t.equal((await catalog('school_migration_status').where({ school_id: id })).length, 1, 'migrate recorded its run')
  const dropped = await run('drop', 'pinewood', '--yes')
  t.equal(dropped.code, 0, dropped.stderr)
  t.match(dropped.stdout, `database ${pinewood} on server default: dropped`)
  t.match(dropped.stdout, `role ${schoolRoleName(pinewood)}: dropped`)
  t.equal(await databaseExists(dbs, pinewood), false, 'the database is gone')
  t.equal(await roleExists(dbs.admin, schoolRoleName(pinewood)), false, 'the role is gone')
  t.same(await catalog('schools').where({ slug: 'pinewood' }), [], 'the catalog row is gone')
  t.same(await catalog('school_migration_status').where({ school_id: id }), [], 'and its migration status')
  const droppedTwice = await run('drop', 'pinewood', '--yes')
  t.equal(droppedTwice.code, 1)
  t.match(droppedTwice.stderr, 'Unknown school "pinewood"')

  // Never migrated: nothing on the server, and drop still clears the row.
  t.equal((await run('suspend', 'birch')).code, 0)
  const birch = await run('drop', 'birch', '--yes')
  t.equal(birch.code, 0, birch.stderr)
  t.match(birch.stdout, `database ${dbs.databaseName('birch')} on server default: was not there`)
  t.match(birch.stdout, `role ${schoolRoleName(dbs.databaseName('birch'))}: was not there`)
  t.same(await catalog('schools').orderBy('slug').pluck('slug'), ['maple-grove'])
})

t.test('add places a school on the server with the fewest schools, ties in TENANT_SERVERS order', async (t) => {
  const dbs = await testDatabases(t, 'scplace')
  // Two server names for one PostgreSQL: placement only counts schools per name.
  const run = cli({ ...dbs.env, TENANT_SERVERS: `west=${dbs.serverUrl},east=${dbs.serverUrl}` })
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  await catalog.raw(`INSERT INTO schools (slug, name, database_name, server) VALUES ('s0', 'By SQL', '${dbs.databaseName('s0')}', 'east')`)

  // west 0, east 1 → west; 1-1 → west, listed first; 2-1 → east.
  for (const [slug, server] of [['p1', 'west'], ['p2', 'west'], ['p3', 'east']] as const) {
    const result = await run('add', slug, '--name', `School ${slug}`, '--database', dbs.databaseName(slug), '--no-migrate')
    t.equal(result.code, 0, result.stderr)
    t.match(result.stdout, `on server ${server},`, `${slug} goes to ${server}`)
  }
  const chosen = await run('add', 'p4', '--name', 'School p4', '--database', dbs.databaseName('p4'), '--server', 'east', '--no-migrate')
  t.equal(chosen.code, 0, chosen.stderr)
  // west 2, east 3 → west; provisioned on the server that name points at.
  const migrated = await run('add', 'p5', '--name', 'School p5', '--database', dbs.databaseName('p5'))
  t.equal(migrated.code, 0, migrated.stdout + migrated.stderr)
  t.match(migrated.stdout, 'on server west,')
  t.equal(await databaseExists(dbs, dbs.databaseName('p5')), true)

  const rows = await catalog('schools').orderBy('slug').select('slug', 'server')
  t.same(Object.fromEntries(rows.map((r: { slug: string, server: string }) => [r.slug, r.server])),
    { p1: 'west', p2: 'west', p3: 'east', p4: 'east', p5: 'west', s0: 'east' })
  const listed = await run('list', '--server', 'west', '--state', 'current')
  t.match(listed.stdout, /^p5\s+west\s+active\s+current\s/m)
  t.match(listed.stdout, '1 school(s): 1 current')
})

t.test('exec runs a task script on every active school', async (t) => {
  const dbs = await testDatabases(t, 'scexec')
  const secret = 'e'.repeat(40)
  const run = cli({ ...dbs.env, TENANT_ROLE_SECRET: secret })
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  await catalog('schools').insert(['alpha', 'beta', 'gamma'].map((slug) => ({ slug, name: slug, database_name: dbs.databaseName(slug) })))
  t.equal(hasFailures(await migrateSchools(dbs.topology, { concurrency: 3, roleSecret: secret })), false)
  await catalog('schools').where({ slug: 'gamma' }).update({ status: 'suspended' })

  const monday = nextMonday()
  await withDatabase(dbs.serverUrl, dbs.databaseName('alpha'), async (db) => {
    await db('lunch_week').insert([{ week_of: monday }, { week_of: '2026-01-05', is_published: true }])
  })
  await withDatabase(dbs.serverUrl, dbs.databaseName('gamma'), async (db) => { await db('lunch_week').insert({ week_of: monday }) })

  const counted = await run('exec', 'scripts/tasks/count-lunch-weeks.ts')
  t.equal(counted.code, 0, counted.stdout + counted.stderr)
  t.match(counted.stdout, /^alpha\s+ok\s+\{"weeks":2,"published":1\}$/m)
  t.match(counted.stdout, /^beta\s+ok\s+\{"weeks":0,"published":0\}$/m)
  t.notMatch(counted.stdout, /gamma/, 'suspended schools are skipped')
  t.match(counted.stdout, '2 school(s): 2 ok, 0 failed.')

  const published = await run('exec', 'scripts/tasks/publish-next-week.ts', '--concurrency', '1')
  t.equal(published.code, 0, published.stdout + published.stderr)
  t.match(published.stdout, new RegExp(`^alpha\\s+ok\\s+published the week of ${monday}$`, 'm'))
  t.match(published.stdout, new RegExp(`^beta\\s+ok\\s+no week of ${monday}$`, 'm'))
  const weeks = await withDatabase(dbs.serverUrl, dbs.databaseName('alpha'), async (db) =>
    await db('lunch_week').orderBy('week_of').select('week_of', 'is_published'))
  t.same(weeks, [{ week_of: '2026-01-05', is_published: true }, { week_of: monday, is_published: true }])
  const gammaWeek = await withDatabase(dbs.serverUrl, dbs.databaseName('gamma'), async (db) => await db('lunch_week').first('is_published'))
  t.equal(gammaWeek?.is_published, false, 'the suspended school was left alone')
  const again = await run('exec', 'scripts/tasks/publish-next-week.ts')
  t.match(again.stdout, new RegExp(`^alpha\\s+ok\\s+the week of ${monday} was already published$`, 'm'))

  const picked = await run('exec', 'scripts/tasks/count-lunch-weeks.ts', '--school', 'gamma', '--school', 'alpha', '--include-suspended')
  t.equal(picked.code, 0, picked.stderr)
  t.match(picked.stdout, /^gamma\s+ok\s+\{"weeks":1,"published":0\}$/m)
  t.notMatch(picked.stdout, /beta/)
  t.match(picked.stdout, '2 school(s): 2 ok, 0 failed.')
  const suspendedByName = await run('exec', 'scripts/tasks/count-lunch-weeks.ts', '--school', 'gamma')
  t.equal(suspendedByName.code, 1, 'a suspended school asked for by name is a failure, not silence')
  t.match(suspendedByName.stdout, /^gamma\s+FAILED\s+suspended/m)

  const dir = t.testdir({
    'flaky.ts': `export default async function ({ school, db }) {
  if (school.slug === 'beta') throw new Error('beta is broken')
  return (await db.raw('SELECT current_user AS who')).rows[0].who
}
`,
    'no-default.ts': 'export const task = async () => 1\n'
  })
  const flaky = await run('exec', path.relative(projectRoot, path.join(dir, 'flaky.ts')))
  t.equal(flaky.code, 1, 'one failed school fails the run')
  t.match(flaky.stdout, new RegExp(`^alpha\\s+ok\\s+${schoolRoleName(dbs.databaseName('alpha'))}$`, 'm'), 'the task ran as the school role')
  t.match(flaky.stdout, /^beta\s+FAILED\s+beta is broken$/m)
  t.match(flaky.stdout, '2 school(s): 1 ok, 1 failed.')
  t.notMatch(flaky.stdout + flaky.stderr, STACK)

  const [noDefault, missing, badConcurrency] = await Promise.all([
    run('exec', path.join(dir, 'no-default.ts')),
    run('exec', 'scripts/tasks/no-such-task.ts'),
    run('exec', 'scripts/tasks/count-lunch-weeks.ts', '--concurrency', '0')
  ])
  t.equal(noDefault.code, 2)
  t.match(noDefault.stderr, 'is not a task script: it must export a default async function')
  t.equal(missing.code, 2)
  t.match(missing.stderr, `No task script at ${path.join(projectRoot, 'scripts/tasks/no-such-task.ts')}`)
  t.equal(badConcurrency.code, 2)
  t.match(badConcurrency.stderr, '--concurrency must be a whole number from 1 to 256')
})

t.test('nextMonday is the Monday after today', async (t) => {
  t.equal(nextMonday(new Date(2026, 10, 22)), '2026-11-23', 'from a Sunday')
  t.equal(nextMonday(new Date(2026, 10, 23, 23, 59)), '2026-11-30', 'from a Monday: the one a week ahead')
  t.equal(nextMonday(new Date(2026, 11, 29)), '2027-01-04', 'from a Tuesday, across the year')
})

t.test('bad command lines get usage and exit code 2, and touch nothing', async (t) => {
  const dbs = await testDatabases(t, 'scusage')
  const run = cli(dbs.env)
  const bad = [
    [], ['frobnicate'], ['list', 'extra'], ['list', '--state', 'bogus'], ['list', '--status', 'gone'], ['list', '--frobnicate'],
    ['list', '--yes'], ['suspend'], ['suspend', 'a', 'b'], ['resume', '--name', 'x', 'a'], ['drop'], ['add', 'x', '--name'],
    ['exec'], ['exec', 'a.ts', '--concurrency', 'many']
  ]
  const results = await Promise.all(bad.map(async (args) => await run(...args)))
  for (const [i, result] of results.entries()) {
    const args = (bad[i] ?? []).join(' ')
    t.equal(result.code, 2, `"${args}" exits 2`)
    t.match(result.stderr, /Usage: npm run schools -- /, `"${args}" shows usage`)
    t.notMatch(result.stderr, STACK)
  }
  const help = await run('--help')
  t.equal(help.code, 0)
  t.match(help.stdout, 'Usage: npm run schools -- <command> [options]')
  const addHelp = await run('add', '--help')
  t.equal(addHelp.code, 0)
  t.match(addHelp.stdout, /fewest schools[\s\S]*listed first in TENANT_SERVERS/, 'the placement rule is documented')
  t.equal(await databaseExists(dbs, dbs.databaseName('catalog')), false, 'nothing was created')

  const noCatalog = await run('list')
  t.equal(noCatalog.code, 1)
  t.match(noCatalog.stderr, 'The catalog does not exist yet')
  t.notMatch(noCatalog.stderr, STACK)
})
