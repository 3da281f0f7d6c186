// Moving a school between two real PostgreSQL servers: the suite's
// ('default') and a cluster of this file's own ('east'). East's template is
// this file's alone, so the seeds of a clone are tested here too.
import t from 'tap'
import type { Knex } from 'knex'
import { openCatalog } from '../../src/catalog/catalog.js'
import { hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { moveSchool, MoveFailed, type MoveOptions, type MoveStep } from '../../src/fleet/move.js'
import { BUILDING_MARK } from '../../src/fleet/school-database.js'
import { SchoolBusy } from '../../src/fleet/school-lock.js'
import { createKnex } from '../../src/postgres/connection.js'
import { schoolRoleName, schoolRoleUrl } from '../../src/postgres/roles.js'
import { testApp, type TestApp } from '../helpers/app.js'
import { assertError } from '../helpers/assertions.js'
import { privateCluster } from '../helpers/private-cluster.js'
import { testServerUrl, withDatabase } from '../helpers/databases.js'
import { runScript, startServerProcess } from '../helpers/run.js'
import { waitFor } from '../helpers/timing.js'

const eastUrl = await privateCluster(t, 'test-fleet-move', 6)
const suiteUrl = await testServerUrl()
const SERVERS = { default: suiteUrl, east: eastUrl }
const TENANT_SERVERS = `default=${suiteUrl},east=${eastUrl}`
const eastAdmin = createKnex(eastUrl, { max: 2 })
t.teardown(async () => { await eastAdmin.destroy() })

async function hasDatabase (admin: Knex, name: string): Promise<boolean> {
  return (await admin.raw<{ rows: unknown[] }>('SELECT 1 FROM pg_database WHERE datname = ?', [name])).rows.length > 0
}

async function hasRole (admin: Knex, name: string): Promise<boolean> {
  return (await admin.raw<{ rows: unknown[] }>('SELECT 1 FROM pg_roles WHERE rolname = ?', [name])).rows.length > 0
}

async function serverOf (app: TestApp, slug: string): Promise<string> {
  const catalog = openCatalog(app.dbs.catalogUrl, 1)
  try {
    return (await catalog('schools').where({ slug }).first('server') as { server: string }).server
  } finally {
    await catalog.destroy()
  }
}

/** A school with some weeks and menus, made through the API. */
async function fillSchool (app: TestApp, slug: string, mondays: string[]): Promise<void> {
  for (const weekOf of mondays) {
    const week = await app.app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: app.auth(slug), payload: { weekOf } })
    if (week.statusCode !== 201) throw new Error(`setup: ${week.body}`)
    const { id, days } = week.json<{ id: string, days: Array<{ id: string }> }>()
    await app.app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${id}/days/${days[0]?.id}`, headers: app.auth(slug), payload: { menuDetails: `Soup of ${weekOf}, "quoted"\ttab\\slash\nnewline é` } })
  }
}

/** Everything the API shows of a school: its weeks with their days. */
async function snapshot (app: TestApp, slug: string): Promise<unknown[]> {
  const list = await app.app.inject({ url: '/api/lunch-weeks', headers: app.auth(slug) })
  if (list.statusCode !== 200) throw new Error(`snapshot of ${slug}: ${list.statusCode} ${list.body}`)
  const weeks = list.json<Array<{ id: string }>>()
  return await Promise.all(weeks.map(async (w) => (await app.app.inject({ url: `/api/lunch-weeks/${w.id}`, headers: app.auth(slug) })).json()))
}

function options (app: TestApp, slug: string, extra: Partial<MoveOptions> = {}): MoveOptions {
  return { slug, to: 'east', roleSecret: app.dbs.config().tenantRoleSecret, ...extra }
}

t.test('a move with data: writes refused during the copy, reads served; then the API reads and writes on the new server', async (t) => {
  const app = await testApp(t, 'mv', { schools: ['alpha', 'beta'], env: { TENANT_SERVERS } })
  await app.app.tenancy.listening
  await fillSchool(app, 'alpha', ['2026-11-23', '2026-11-30', '2026-12-07'])
  await fillSchool(app, 'beta', ['2026-11-23'])
  const before = await snapshot(app, 'alpha')
  const alphaDb = app.dbs.databaseName('alpha')

  let duringCopy: { write: Awaited<ReturnType<typeof app.app.inject>>, read: unknown[] } | null = null
  const report = await moveSchool({ catalogUrl: app.dbs.catalogUrl, servers: SERVERS }, options(app, 'alpha', {
    atStep: async (step) => {
      if (step !== 'copy') return
      const write = await app.app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: app.auth('alpha'), payload: { weekOf: '2026-12-14' } })
      duringCopy = { write, read: await snapshot(app, 'alpha') }
    }
  }))
  if (duringCopy === null) throw new Error('the copy step was never reached')
  const { write, read } = duringCopy as { write: Awaited<ReturnType<typeof app.app.inject>>, read: unknown[] }
  assertError(t, write, 503, 'SCHOOL_MOVING', 'a write during the copy')
  t.equal(write.headers['retry-after'], '5', 'with Retry-After')
  t.same(read, before, 'reads during the copy see every row')

  t.same(report.tables.map((m) => [m.name, m.rows]), [['lunch_week', 3], ['lunch_day', 15]], 'every row of both tables, parents first')
  t.ok(report.tables.every((m) => m.bytes > 0), 'bytes counted')
  t.ok(report.freezeMs >= 0 && report.freezeMs <= report.totalMs, 'the freeze is measured, inside the whole move')
  t.same(report.source, { kept: false, error: null })
  t.equal(await serverOf(app, 'alpha'), 'east', 'the catalog names the new server')
  t.equal(await hasDatabase(app.dbs.admin, alphaDb), false, 'the source database is dropped')
  t.equal(await hasRole(app.dbs.admin, schoolRoleName(alphaDb)), false, 'and its role, on the source server')
  t.equal(await hasRole(eastAdmin, schoolRoleName(alphaDb)), true, 'the role exists on the new server')

  // The catalog's NOTIFY sends the app to east; until it lands the old pool answers 503.
  await waitFor('alpha served from east', 10_000, async () => (await app.app.inject({ url: '/api/lunch-weeks', headers: app.auth('alpha') })).statusCode === 200)
  t.same(await snapshot(app, 'alpha'), before, 'the API reads every row back from the new server')
  const added = await app.app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: app.auth('alpha'), payload: { weekOf: '2026-12-14' } })
  t.equal(added.statusCode, 201, 'writes work on the new server')
  const maxBefore = Math.max(...before.map((w) => Number((w as { id: string }).id)))
  t.equal(added.json<{ id: string }>().id, String(maxBefore + 1), 'the sequence went along: the next id follows the copied ones')
  const onEast = await withDatabase(eastUrl, alphaDb, async (db) => await db('lunch_week').where({ week_of: '2026-12-14' }).first('id'))
  t.ok(onEast !== undefined, 'the new week is in the database on east')
  t.equal((await snapshot(app, 'beta')).length, 1, 'beta, not moved, is served as before')
})

t.test('a failure at each step leaves the school on its server, writable, with nothing lost; a re-run then moves it', async (t) => {
  const app = await testApp(t, 'mvfail', { schools: ['gamma'], env: { TENANT_SERVERS } })
  await app.app.tenancy.listening
  await fillSchool(app, 'gamma', ['2026-11-23', '2026-11-30'])
  const gammaDb = app.dbs.databaseName('gamma')
  const where = { catalogUrl: app.dbs.catalogUrl, servers: SERVERS }
  let weeks = 2

  const failures: Record<MoveStep, (step: MoveStep) => Promise<void>> = {
    target: async () => { throw new Error('injected: the target server went away') },
    copy: async () => { throw new Error('injected: the copy broke off') },
    // A real mismatch: the target loses a row after the copy, and the checksums see it.
    verify: async () => { await withDatabase(eastUrl, gammaDb, async (db) => { await db('lunch_day').where('id', 1).delete() }) },
    switch: async () => { throw new Error('injected: the catalog refused the update') }
  }
  for (const [failing, inject] of Object.entries(failures) as Array<[MoveStep, (step: MoveStep) => Promise<void>]>) {
    const before = await snapshot(app, 'gamma')
    const failed = await moveSchool(where, options(app, 'gamma', { atStep: async (step) => { if (step === failing) await inject(step) } }))
      .then(() => null, (error: unknown) => error)
    t.ok(failed instanceof MoveFailed, `${failing}: the move fails`)
    t.equal((failed as MoveFailed).step, failing, `${failing}: the error names the step`)
    if (failing === 'verify') t.match((failed as Error).message, `table lunch_day: ${weeks * 5} row(s) expected, ${weeks * 5 - 1} found`, 'verify: names the table that differs')
    t.match((failed as Error).message, failing === 'target' ? /its writes were never stopped/ : /writable again; nothing was lost/, `${failing}: says the school is served from the source`)
    t.match((failed as Error).message, /half-built database on server "east" was dropped, with its role/, `${failing}: says the target was removed`)

    t.equal(await serverOf(app, 'gamma'), 'default', `${failing}: the catalog still names the source`)
    t.equal(await hasDatabase(eastAdmin, gammaDb), false, `${failing}: no database left on east`)
    t.equal(await hasRole(eastAdmin, schoolRoleName(gammaDb)), false, `${failing}: no role left on east`)
    t.same(await snapshot(app, 'gamma'), before, `${failing}: every row is still served from the source`)
    const monday = new Date(Date.UTC(2026, 11, 7 + 7 * (weeks - 2))).toISOString().slice(0, 10)
    const written = await app.app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: app.auth('gamma'), payload: { weekOf: monday } })
    t.equal(written.statusCode, 201, `${failing}: the school takes writes again`)
    weeks++
  }

  const before = await snapshot(app, 'gamma')
  const report = await moveSchool(where, options(app, 'gamma'))
  t.same(report.tables.map((m) => m.rows), [weeks, weeks * 5], 'a re-run moves every row, the ones written between the attempts too')
  await waitFor('gamma served from east', 10_000, async () => (await app.app.inject({ url: '/api/lunch-weeks', headers: app.auth('gamma') })).statusCode === 200)
  t.same(await snapshot(app, 'gamma'), before, 'the same rows, from east')
})

t.test('a re-run after a move that died drops what it left on the target; a database no move made is never dropped', async (t) => {
  const app = await testApp(t, 'mvleft', { schools: ['theta', 'iota'], env: { TENANT_SERVERS } })
  await fillSchool(app, 'theta', ['2026-11-23'])
  const where = { catalogUrl: app.dbs.catalogUrl, servers: SERVERS }
  // What a move killed half-way leaves on the target: a database still labelled as being built.
  await eastAdmin.raw('CREATE DATABASE mvleft_theta')
  await eastAdmin.raw(`COMMENT ON DATABASE mvleft_theta IS '${BUILDING_MARK}'`)
  const report = await moveSchool(where, options(app, 'theta'))
  t.same(report.tables.map((m) => m.rows), [1, 5], 'the re-run moves the school')

  await eastAdmin.raw('CREATE DATABASE mvleft_iota')
  await t.rejects(moveSchool(where, options(app, 'iota')),
    { message: 'The server already has a database "mvleft_iota", not made by a move or a restore; drop or rename it first if it is not needed' },
    'a database of that name that no move made is a refusal')
  t.equal(await hasDatabase(eastAdmin, 'mvleft_iota'), true, 'and is left alone')
  t.equal(await serverOf(app, 'iota'), 'default')
  const written = await app.app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: app.auth('iota'), payload: { weekOf: '2026-11-23' } })
  t.equal(written.statusCode, 201, 'iota was never frozen')
})

t.test('the command line: refusals in one line, a suspended school moved with --keep-source', async (t) => {
  const app = await testApp(t, 'mvcli', { schools: ['delta'], env: { TENANT_SERVERS } })
  await app.app.tenancy.listening
  await fillSchool(app, 'delta', ['2026-11-23', '2026-11-30'])
  const before = await snapshot(app, 'delta')
  const deltaDb = app.dbs.databaseName('delta')
  const env = { ...app.dbs.env, TENANT_SERVERS }
  const run = async (...args: string[]): Promise<Awaited<ReturnType<typeof runScript>>> => await runScript('scripts/schools.ts', args, env)

  const [unknownSchool, unknownServer, sameServer, noTarget] = await Promise.all([
    run('move', 'nosuch', '--to', 'east'),
    run('move', 'delta', '--to', 'west'),
    run('move', 'delta', '--to', 'default'),
    run('move', 'delta')
  ])
  for (const [result, line] of [
    [unknownSchool, 'Unknown school "nosuch": it is not in the catalog'],
    [unknownServer, 'Unknown server "west": TENANT_SERVERS names default, east'],
    [sameServer, 'School "delta" is already on server "default"; nothing to move']
  ] as const) {
    t.equal(result.code, 1, `${line}: exit 1`)
    t.equal(result.stderr.trim(), line, 'one line, nothing else')
  }
  t.equal(noTarget.code, 2, 'no --to is a bad command line')
  t.match(noTarget.stderr, 'move needs --to <server>')
  t.equal(await hasDatabase(eastAdmin, deltaDb), false, 'no refusal built anything')

  await app.setStatus('delta', 'suspended')
  const moved = await run('move', 'delta', '--to', 'east', '--keep-source')
  t.equal(moved.code, 0, moved.stdout + moved.stderr)
  t.match(moved.stdout, `Moved school delta from default to east (database ${deltaDb}, `)
  t.match(moved.stdout, /^lunch_week\s+2\s+\d+(\.\d)? k?B$/m)
  t.match(moved.stdout, /^lunch_day\s+10\s+\d+(\.\d)? k?B$/m)
  t.match(moved.stdout, /Moved 12 row\(s\), \d+(\.\d)? k?B, in 2 table\(s\); row counts and checksums match on both servers\./)
  t.match(moved.stdout, /Write freeze: \d+ ms \(copy, verify and switch\); whole move \d+\.\d s\./, 'the freeze is printed')
  t.match(moved.stdout, 'Source: kept on server default, writes still refused there')

  t.equal(await serverOf(app, 'delta'), 'east')
  const suspended = await app.app.inject({ url: '/api/lunch-weeks', headers: app.auth('delta') })
  assertError(t, suspended, 403, 'SCHOOL_SUSPENDED', 'a suspended school stays suspended on its new server')
  await app.setStatus('delta', 'active')
  await waitFor('delta served from east', 10_000, async () => (await app.app.inject({ url: '/api/lunch-weeks', headers: app.auth('delta') })).statusCode === 200)
  t.same(await snapshot(app, 'delta'), before, 'resumed, it is served from east with every row')

  t.equal(await hasDatabase(app.dbs.admin, deltaDb), true, '--keep-source: the source database stays')
  t.equal(await hasRole(app.dbs.admin, schoolRoleName(deltaDb)), true, 'and its role')
  const note = await app.dbs.admin.raw<{ rows: Array<{ note: string }> }>("SELECT shobj_description(oid, 'pg_database') AS note FROM pg_database WHERE datname = ?", [deltaDb])
  t.match(note.rows[0]?.note, 'copy of school delta left by a move to server east', 'the kept copy says what it is')
  const asRole = createKnex(schoolRoleUrl(suiteUrl, deltaDb, app.dbs.config().tenantRoleSecret), { max: 1 })
  t.teardown(async () => { await asRole.destroy() })
  t.equal((await asRole('lunch_week').count({ n: '*' }).first())?.n, '2', 'the kept copy can be read')
  await t.rejects(asRole('lunch_week').insert({ week_of: '2027-01-04' }), { code: '25006' }, 'but not written: its sessions are read-only')
  await t.rejects(asRole.transaction(async (trx) => {
    await trx.raw('SET TRANSACTION READ WRITE')
    await trx('lunch_week').insert({ week_of: '2027-01-04' })
  }), { code: '42501' }, 'and a session that turns read-only off still lacks the grants')
})

t.test("the move holds the school's migration lock: a second move is refused, a migrate waits", async (t) => {
  const app = await testApp(t, 'mvlock', { schools: ['eps'], env: { TENANT_SERVERS } })
  await fillSchool(app, 'eps', ['2026-11-23'])
  const where = { catalogUrl: app.dbs.catalogUrl, servers: SERVERS }
  const epsDb = app.dbs.databaseName('eps')
  let paused: () => void = () => {}
  let resume: () => void = () => {}
  const atTarget = new Promise<void>((resolve) => { paused = resolve })
  const released = new Promise<void>((resolve) => { resume = resolve })
  const first = moveSchool(where, options(app, 'eps', { atStep: async (step) => { if (step === 'target') { paused(); await released } } }))
  await atTarget

  await t.rejects(moveSchool(where, options(app, 'eps')), new SchoolBusy(
    'School "eps" is being migrated, moved or restored by another run (it holds the school\'s migration lock); try again once that run is done'),
  'a second move is refused at once, with a message')
  const migrating = migrateSchools({ ...app.dbs.topology, servers: SERVERS }, { concurrency: 1, only: ['eps'], verify: true })
  await waitFor('migrate waiting for the lock', 10_000, async () => (await app.dbs.admin.raw<{ rows: unknown[] }>(
    "SELECT 1 FROM pg_stat_activity WHERE datname = ? AND application_name = 'school-lunch:migrate' AND wait_event = 'advisory'", [epsDb])).rows.length > 0)
  t.pass('a concurrent migrate waits for the lock')
  resume()
  const report = await first
  t.equal(report.to, 'east', 'the first move finishes')
  const waited = await migrating
  // Its connection was to the source, dropped with its sessions ended: how
  // the driver words that varies, and a migrate that asks again after its
  // session ended finds the database gone.
  t.match(waited.schools[0]?.error, new RegExp(`terminat|connection|database "${epsDb}" does not exist`), 'the migrate that waited on the dropped source fails for that school')
  const again = await migrateSchools({ ...app.dbs.topology, servers: SERVERS }, { concurrency: 1, only: ['eps'] })
  t.equal(hasFailures(again), false, 'the next migrate finds the school on its new server')
  t.equal(again.schools[0]?.server, 'east')
})

t.test('a second API process follows the switch through NOTIFY, long before its cache TTL', async (t) => {
  const app = await testApp(t, 'mvproc', { schools: ['zeta'], env: { TENANT_SERVERS } })
  await fillSchool(app, 'zeta', ['2026-11-23', '2026-11-30'])
  const server = await startServerProcess({ ...app.dbs.env, TENANT_SERVERS })
  t.teardown(() => { if (server.child.exitCode === null) server.child.kill('SIGKILL') })
  const headers = { ...app.auth('zeta'), 'content-type': 'application/json' }
  const weeks = async (): Promise<{ status: number, weeks: string[] }> => {
    const res = await fetch(`${server.address}/api/lunch-weeks`, { headers })
    return { status: res.status, weeks: res.status === 200 ? (await res.json() as Array<{ weekOf: string }>).map((w) => w.weekOf) : [] }
  }
  t.same(await weeks(), { status: 200, weeks: ['2026-11-30', '2026-11-23'] }, 'the process serves zeta from default (and caches it for 30 s)')
  await waitFor('the process to listen', 5_000, async () => (await app.dbs.admin.raw<{ rows: unknown[] }>(
    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'school-lunch:listen' AND datname = ?", ['mvproc_catalog'])).rows.length > 0)

  await moveSchool({ catalogUrl: app.dbs.catalogUrl, servers: SERVERS }, options(app, 'zeta'))
  const ms = await waitFor('the process to serve zeta from east', 10_000, async () => (await weeks()).status === 200)
  t.comment(`the process served zeta again ${ms} ms after the move`)
  t.same(await weeks(), { status: 200, weeks: ['2026-11-30', '2026-11-23'] }, 'every week, from east, well before the 30 s TTL')
  const written = await fetch(`${server.address}/api/lunch-weeks`, { method: 'POST', headers, body: JSON.stringify({ weekOf: '2026-12-07' }) })
  t.equal(written.status, 201, 'and it writes there')
  const onEast = await withDatabase(eastUrl, app.dbs.databaseName('zeta'), async (db) => await db('lunch_week').pluck('week_of'))
  t.same(onEast.sort(), ['2026-11-23', '2026-11-30', '2026-12-07'], 'the write landed on east')
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0)
})

t.test('seeds: a school cloned from the template gets the same seeds as one created plainly', async (t) => {
  const app = await testApp(t, 'mvseed', { env: { TENANT_SERVERS } })
  const catalog = openCatalog(app.dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  await catalog('schools').insert(['cloned', 'plain'].map((slug) => ({ slug, name: slug, database_name: app.dbs.databaseName(slug), server: 'east' })))
  const topology = { ...app.dbs.topology, servers: SERVERS }
  const cloned = await migrateSchools(topology, { concurrency: 1, only: ['cloned'], seeding: 'run' })
  const plain = await migrateSchools(topology, { concurrency: 1, only: ['plain'], seeding: 'run', useTemplate: false })
  t.same([cloned.schools[0]?.database, plain.schools[0]?.database], ['cloned', 'created'], 'one from the template, one plainly')
  t.same(cloned.schools[0]?.seeds, plain.schools[0]?.seeds, 'the same seeds ran')
  t.equal(cloned.schools[0]?.seeds.length, 1)
  const rows = async (slug: string): Promise<unknown[]> => await withDatabase(eastUrl, app.dbs.databaseName(slug), async (db) =>
    await db('lunch_week as w').join('lunch_day as d', 'd.lunch_week_id', 'w.id').orderBy('d.day').select('w.week_of', 'w.is_published', 'd.day', 'd.menu_details'))
  const clonedRows = await rows('cloned')
  t.equal(clonedRows.length, 10, 'two weeks of five days')
  t.same(clonedRows, await rows('plain'), 'the same rows in both')
})
