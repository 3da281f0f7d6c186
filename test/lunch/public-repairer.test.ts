import t from 'tap'
import { openCatalog } from '../../src/catalog/catalog.js'
import { publicCopies } from '../../src/lunch/public-menus.js'
import { createRepairer } from '../../src/lunch/public-repairer.js'
import { testApp } from '../helpers/app.js'
import { withDatabase } from '../helpers/databases.js'

t.test('schools that fail to repair wait out a backoff and never hold up the others', async (t) => {
  // Oldest note first: "broken" (in the catalog, never migrated) comes before "good".
  const ctx = await testApp(t, 'pubrep', { schools: ['good'], unmigrated: ['broken'], publicMenus: { repairIntervalMs: 0 } })
  await withDatabase(ctx.dbs.serverUrl, ctx.dbs.databaseName('good'), async (db) => {
    await db('lunch_week').insert({ week_of: '2026-11-23', is_published: true })
  })
  const catalog = openCatalog(ctx.dbs.catalogUrl, 2)
  t.teardown(async () => { await catalog.destroy() })
  const ids = Object.fromEntries((await catalog('schools').select('id', 'slug') as Array<{ id: string, slug: string }>).map((row) => [row.slug, Number(row.id)]))
  await catalog('public_lunch_pending').insert([
    { school_id: ids.broken, created_at: '-infinity' },
    { school_id: ids.good, created_at: '2000-01-01' }
  ])

  const repaired: number[] = []
  const repairer = createRepairer({
    copies: publicCopies(catalog),
    servers: ctx.dbs.topology.servers,
    roleSecret: ctx.dbs.config().tenantRoleSecret,
    repairAfterMs: 0,
    onRepaired: (schoolId) => { repaired.push(schoolId) },
    log: ctx.app.log,
    // One school per query: with the failing school first, a pass must still reach the next.
    batchSize: 1
  })
  t.teardown(async () => { await repairer.close() })

  t.equal(await repairer.repair(), 1, 'one pass repairs the good school')
  t.same(repaired, [ids.good])
  t.match(repairer.stats(), { repairs: 1, failures: 1, connectionsOpened: 2 }, 'after trying the broken one once')
  t.same((await catalog('public_lunch_weeks').select('school_id', 'week_of')), [{ school_id: String(ids.good), week_of: '2026-11-23' }], 'good\'s week is copied')
  t.same((await catalog('public_lunch_pending').select('school_id')).map((row: { school_id: string }) => Number(row.school_id)), [ids.broken], 'broken\'s note stays')

  t.equal(await repairer.repair(), 0, 'a pass at once leaves the broken school to its backoff')
  t.equal(repairer.stats().failures, 1, 'without trying it again')
})
