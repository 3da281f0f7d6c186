import t from 'tap'
import type { Knex } from 'knex'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { forEachSchool, type Fleet } from '../../src/fleet/for-each-school.js'
import { hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { schoolRoleName } from '../../src/postgres/roles.js'
import { testDatabases } from '../helpers/databases.js'

const SECRET = 'f'.repeat(40)

t.test('forEachSchool runs a task per school, as its role, in isolation', async (t) => {
  const dbs = await testDatabases(t, 'fe')
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  const slugs = ['alpha', 'beta', 'gamma', 'delta', 'epsilon']
  await catalog('schools').insert(slugs.map((slug) => ({ slug, name: `School ${slug}`, database_name: dbs.databaseName(slug) })))
  const report = await migrateSchools(dbs.topology, { concurrency: 3, roleSecret: SECRET })
  t.equal(hasFailures(report), false, 'the schools are set up')
  const fleet: Fleet = { catalogUrl: dbs.catalogUrl, servers: dbs.topology.servers, roleSecret: SECRET }

  t.test('each school gets a one-connection db on its own database, as its own role, closed afterwards', async (t) => {
    const used: Knex[] = []
    const results = await forEachSchool(fleet, async ({ school, db }) => {
      used.push(db)
      const [a, b] = await Promise.all([
        db.raw('SELECT current_user AS who, current_database() AS dbname, pg_backend_pid() AS pid'),
        db.raw('SELECT pg_backend_pid() AS pid')
      ])
      return { slug: school.slug, ...a.rows[0], samePid: a.rows[0].pid === b.rows[0].pid }
    }, { concurrency: 2 })
    t.same(results.map((r) => r.slug), [...slugs].sort(), 'one result per school, in slug order')
    for (const result of results) {
      t.ok(result.ok, `${result.slug} ran`)
      if (!result.ok) continue
      t.match(result.value, {
        slug: result.slug,
        who: schoolRoleName(dbs.databaseName(result.slug)),
        dbname: dbs.databaseName(result.slug),
        samePid: true
      }, `${result.slug}: its role, its database, one connection`)
    }
    t.equal(used.length, slugs.length)
    for (const db of used) await t.rejects(db.raw('SELECT 1'), 'the pool was destroyed after its school')
  })

  t.test('one school throwing is reported and stops nobody', async (t) => {
    const progress: Array<{ done: number, total: number, failed: number }> = []
    const results = await forEachSchool(fleet, async ({ school, db }) => {
      if (school.slug === 'beta') throw new Error('beta is broken')
      if (school.slug === 'gamma') await db.raw('SELECT * FROM no_such_table')
      return (await db('lunch_week').count({ n: '*' }))[0]?.n
    }, { concurrency: 5, onProgress: (p) => progress.push(p) })
    t.same(results.filter((r) => r.ok).map((r) => r.slug), ['alpha', 'delta', 'epsilon'])
    const failures = Object.fromEntries(results.flatMap((r) => r.ok ? [] : [[r.slug, r.error.message]]))
    t.equal(failures.beta, 'beta is broken')
    t.match(failures.gamma, /relation "no_such_table" does not exist/)
    t.same(progress.map((p) => p.done), [1, 2, 3, 4, 5])
    t.same(progress.at(-1), { done: 5, total: 5, failed: 2 })
  })

  t.test('no more than `concurrency` schools run at once', async (t) => {
    let inFlight = 0
    let maxInFlight = 0
    const results = await forEachSchool(fleet, async ({ db }) => {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      try {
        await db.raw('SELECT pg_sleep(0.1)')
      } finally {
        inFlight--
      }
    }, { concurrency: 2 })
    t.equal(results.length, 5)
    t.equal(maxInFlight, 2, 'two at a time, never more')
  })

  t.test('only limits the run; a slug it cannot run is reported', async (t) => {
    const seen: string[] = []
    const results = await forEachSchool(fleet, async ({ school }) => { seen.push(school.slug) },
      { concurrency: 4, only: ['gamma', 'alpha', 'nosuch', 'alpha'] })
    t.same(seen.sort(), ['alpha', 'gamma'])
    t.same(results.map((r) => [r.slug, r.ok]), [['alpha', true], ['gamma', true], ['nosuch', false]])
    const unknown = results.find((r) => r.slug === 'nosuch')
    t.match(unknown?.ok === false ? unknown.error.message : '', /not in the catalog/)
  })

  t.test('suspended schools are skipped unless included; named in only, they are reported', async (t) => {
    await catalog('schools').where({ slug: 'delta' }).update({ status: 'suspended' })
    t.teardown(async () => { await catalog('schools').where({ slug: 'delta' }).update({ status: 'active' }) })

    const skipped = await forEachSchool(fleet, async ({ school }) => school.status, { concurrency: 5 })
    t.same(skipped.map((r) => r.slug), ['alpha', 'beta', 'epsilon', 'gamma'], 'delta is not run by default')

    const included = await forEachSchool(fleet, async ({ school, db }) =>
      `${school.status}:${(await db.raw('SELECT current_user AS who')).rows[0].who}`, { concurrency: 5, includeSuspended: true })
    t.same(included.find((r) => r.slug === 'delta'),
      { slug: 'delta', ok: true, value: `suspended:${schoolRoleName(dbs.databaseName('delta'))}` }, 'included on request')

    let ran = false
    const named = await forEachSchool(fleet, async () => { ran = true }, { concurrency: 1, only: ['delta'] })
    t.equal(ran, false)
    t.equal(named.length, 1)
    t.match(named[0], { slug: 'delta', ok: false, error: { message: /suspended/ } }, 'asked for by name, it is reported, not dropped')
  })

  t.test('a school that cannot be reached fails alone', async (t) => {
    await catalog('schools').insert([
      { slug: 'unmigrated', name: 'Not migrated', database_name: dbs.databaseName('unmigrated') },
      { slug: 'elsewhere', name: 'Unknown server', database_name: dbs.databaseName('elsewhere'), server: 'mars' }
    ])
    t.teardown(async () => { await catalog('schools').whereIn('slug', ['unmigrated', 'elsewhere']).delete() })
    const results = await forEachSchool(fleet, async ({ db }) => (await db.raw('SELECT 1 AS one')).rows[0].one, { concurrency: 3 })
    t.same(results.filter((r) => r.ok).map((r) => r.slug), ['alpha', 'beta', 'delta', 'epsilon', 'gamma'])
    t.match(results.find((r) => r.slug === 'elsewhere'), { ok: false, error: { message: /server "mars" is not configured/ } })
    // Its role does not exist yet, so its login is refused.
    t.match(results.find((r) => r.slug === 'unmigrated'), { ok: false, error: { message: /password authentication failed|does not exist/ } })
  })

  t.test('the wrong role secret cannot log in', async (t) => {
    const querying = await forEachSchool({ ...fleet, roleSecret: 'w'.repeat(40) }, async ({ db }) => await db.raw('SELECT 1'),
      { concurrency: 5, only: ['alpha'] })
    t.match(querying[0], { slug: 'alpha', ok: false, error: { message: /password authentication failed/ } })
  })
})
