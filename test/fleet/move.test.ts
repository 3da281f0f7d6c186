// Moving a school between two real PostgreSQL servers: the suite's
// ('default') and a cluster of this file's own ('east').
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import type { Knex } from 'knex'
import { openCatalog } from '../../src/catalog/catalog.js'
import { projectRoot, type EmbeddedPostgresConfig } from '../../src/config.js'
import { moveSchool, MoveFailed, type MoveOptions, type MoveStep } from '../../src/fleet/move.js'
import { createKnex } from '../../src/postgres/connection.js'
import { attachEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/postgres/embedded.js'
import { schoolRoleName } from '../../src/postgres/roles.js'
import { testApp, type TestApp } from '../helpers/app.js'
import { assertError } from '../helpers/assertions.js'
import { clusterPort } from '../helpers/cluster.js'
import { testServerUrl, withDatabase } from '../helpers/databases.js'
import { waitFor } from '../helpers/timing.js'

const east: EmbeddedPostgresConfig = {
  dataDir: path.resolve(projectRoot, '.data/test-fleet-move'),
  port: clusterPort(6),
  password: 'postgres',
  maxConnections: 100,
  fsync: false
}

async function wipeEast (): Promise<void> {
  await stopEmbeddedPostgres(east.dataDir)
  fs.rmSync(east.dataDir, { recursive: true, force: true })
  fs.rmSync(`${east.dataDir}.leases`, { recursive: true, force: true })
}

await wipeEast() // leftovers of an interrupted run
t.teardown(wipeEast)
const eastUrl = (await attachEmbeddedPostgres(east, { holder: 'fleet-move-test', log: () => {} })).url
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
    const { id, days } = week.json<{ id: number, days: Array<{ id: number }> }>()
    await app.app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${id}/days/${days[0]?.id}`, headers: app.auth(slug), payload: { menuDetails: `Soup of ${weekOf}, "quoted"\ttab\\slash\nnewline é` } })
  }
}

/** Everything the API shows of a school: its weeks with their days. */
async function snapshot (app: TestApp, slug: string): Promise<unknown[]> {
  const list = await app.app.inject({ url: '/api/lunch-weeks', headers: app.auth(slug) })
  if (list.statusCode !== 200) throw new Error(`snapshot of ${slug}: ${list.statusCode} ${list.body}`)
  const weeks = list.json<Array<{ id: number }>>()
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
  const maxBefore = Math.max(...before.map((w) => (w as { id: number }).id))
  t.equal(added.json<{ id: number }>().id, maxBefore + 1, 'the sequence went along: the next id follows the copied ones')
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
