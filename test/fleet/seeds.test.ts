// Provisioning hooks: seeds run once per school, the first time it is
// provisioned, as the school's role; a failure is retried, never repeated.
import t from 'tap'
import type { Knex } from 'knex'
import { currentAndNextMonday } from '../../database/seeds/20261130000000_current_and_next_week.js'
import { fleetStatus } from '../../src/fleet/fleet-status.js'
import { hasFailures, migrateSchools, type MigrateOptions } from '../../src/fleet/migrate-schools.js'
import { SeedSource } from '../../src/fleet/seeds.js'
import { schoolRoleName } from '../../src/postgres/roles.js'
import { testCatalog, testDatabases, withDatabase, type TestDatabases } from '../helpers/databases.js'
import { runScript } from '../helpers/run.js'

const APP_SEED = '20261130000000_current_and_next_week'

async function weeksOf (dbs: TestDatabases, slug: string): Promise<Array<{ week_of: string, is_published: boolean, days: string[] }>> {
  return await withDatabase(dbs.serverUrl, dbs.databaseName(slug), async (db) => {
    const weeks = await db('lunch_week').orderBy('week_of').select('id', 'week_of', 'is_published') as Array<{ id: string, week_of: string, is_published: boolean }>
    return await Promise.all(weeks.map(async (w) => ({
      week_of: w.week_of,
      is_published: w.is_published,
      days: await db('lunch_day').where({ lunch_week_id: w.id }).orderBy('day').pluck('day') as string[]
    })))
  })
}

async function seedState (catalog: Knex, slug: string): Promise<{ seeding: string | null, seeds: string[], lastError: string | null }> {
  const row = await catalog('schools as s').leftJoin('school_migration_status as m', 'm.school_id', 's.id').where('s.slug', slug)
    .first('s.id', 'm.seeding', 'm.last_error') as { id: string, seeding: string | null, last_error: string | null }
  return { seeding: row.seeding, seeds: await catalog('school_seeds').where({ school_id: row.id }).orderBy('seed').pluck('seed'), lastError: row.last_error }
}

t.test("the app's seed: a new school starts with this week and the next, five days each, unpublished, as its own role", async (t) => {
  const { dbs, catalog } = await testCatalog(t, 'sd', ['fresh', 'library'])

  const first = await migrateSchools(dbs.topology, { concurrency: 1, only: ['fresh'], seeding: 'run', useTemplate: false })
  t.equal(hasFailures(first), false, JSON.stringify(first.schools))
  t.same(first.schools[0]?.seeds, [APP_SEED], 'the seed ran')
  const [monday, next] = currentAndNextMonday()
  const weekdays = (from: string): string[] => [0, 1, 2, 3, 4].map((d) => new Date(Date.parse(`${from}T00:00:00Z`) + d * 86_400_000).toISOString().slice(0, 10))
  t.same(await weeksOf(dbs, 'fresh'), [
    { week_of: monday, is_published: false, days: weekdays(monday) },
    { week_of: next, is_published: false, days: weekdays(next) }
  ], 'this week and the next, Monday to Friday, unpublished')
  t.same(await seedState(catalog, 'fresh'), { seeding: 'done', seeds: [APP_SEED], lastError: null }, 'the catalog records it')

  const again = await migrateSchools(dbs.topology, { concurrency: 1, only: ['fresh'], seeding: 'run', verify: true })
  t.same(again.schools[0]?.seeds, [], 'a later run, even one that looks inside, seeds nothing')
  t.equal((await weeksOf(dbs, 'fresh')).length, 2, 'still two weeks')

  const library = await migrateSchools(dbs.topology, { concurrency: 1, only: ['library'], useTemplate: false })
  t.equal(hasFailures(library), false)
  t.same(await weeksOf(dbs, 'library'), [], 'a run that leaves seeding out (the library default) seeds nothing')
  t.same(await seedState(catalog, 'library'), { seeding: null, seeds: [], lastError: null })
  const afterwards = await migrateSchools(dbs.topology, { concurrency: 1, only: ['library'], seeding: 'run', verify: true })
  t.same(afterwards.schools[0]?.seeds, [], 'nor does a seeding run later: seeds are for a first provisioning only')
})

t.test('a failing seed is reported like a failed migration, stops no other school, and the next run retries it; no seed runs twice', async (t) => {
  const { dbs, catalog } = await testCatalog(t, 'sdfail', ['s1', 's2'])
  const dir = t.testdir({
    'a_first.js': `export default async function ({ school, db }) {
  await db('lunch_week').insert({ week_of: '2027-03-01' })
  await db('lunch_day').insert({ lunch_week_id: (await db('lunch_week').first('id')).id, day: '2027-03-01', menu_details: 'seeded for ' + school.slug })
}
`,
    'b_flaky.js': `export default async function ({ school, db }) {
  await db('lunch_week').insert({ week_of: '2027-03-08' })
  if ((globalThis.failSeedsFor ?? []).includes(school.slug)) throw new Error('the seed broke for ' + school.slug)
}
`,
    'c_who.js': `export default async function ({ school, db }) {
  const { rows } = await db.raw('SELECT current_user AS who')
  await db('lunch_week').insert({ week_of: '2027-03-15', is_published: rows[0].who === ${JSON.stringify(schoolRoleName(dbs.databaseName('s2')))} })
}
`
  })
  const seeds = new SeedSource(dir)
  const run = async (options: Partial<MigrateOptions> = {}): ReturnType<typeof migrateSchools> =>
    await migrateSchools(dbs.topology, { concurrency: 2, seeding: 'run', seeds, useTemplate: false, ...options })
  const weeks = async (slug: string): Promise<string[]> => (await weeksOf(dbs, slug)).map((w) => w.week_of)

  Object.assign(globalThis, { failSeedsFor: ['s1'] })
  const first = await run()
  const bySlug = Object.fromEntries(first.schools.map((s) => [s.slug, s]))
  t.equal(hasFailures(first), true, 'the run fails')
  t.equal(bySlug.s1?.error, 'seed b_flaky: the seed broke for s1', 'naming the seed and its error')
  t.same(bySlug.s2?.seeds, ['a_first', 'b_flaky', 'c_who'], 's2 got every seed')
  t.equal(bySlug.s2?.error, null)
  t.same(await seedState(catalog, 's1'), { seeding: 'pending', seeds: ['a_first'], lastError: 'seed b_flaky: the seed broke for s1' }, 's1: the seed before it is recorded, the error too')
  t.same(await weeks('s1'), ['2027-03-01'], "s1: the failed seed's transaction left nothing")
  t.equal((await fleetStatus(catalog)).schools.find((s) => s.slug === 's1')?.state, 'failed', 's1 shows as failed, like a failed migration')
  t.same((await weeksOf(dbs, 's2')).find((w) => w.week_of === '2027-03-15')?.is_published, true, 'seeds run as the school\'s own role')

  Object.assign(globalThis, { failSeedsFor: [] })
  const retried = await run({ failedOnly: true })
  t.equal(hasFailures(retried), false, JSON.stringify(retried.schools))
  t.same(retried.schools.map((s) => [s.slug, s.seeds]), [['s1', ['b_flaky', 'c_who']]], 'the next run retries s1 from the failed seed on')
  t.same(await weeks('s1'), ['2027-03-01', '2027-03-08', '2027-03-15'], 'each seed ran exactly once')
  t.same(await seedState(catalog, 's1'), { seeding: 'done', seeds: ['a_first', 'b_flaky', 'c_who'], lastError: null })

  await catalog('schools').insert({ slug: 's3', name: 's3', database_name: dbs.databaseName('s3') })
  const together = await Promise.all([run({ only: ['s3'] }), run({ only: ['s3'] })])
  t.same(together.flatMap((r) => r.schools.flatMap((s) => s.seeds)).sort(), ['a_first', 'b_flaky', 'c_who'], 'two runs at once: each seed ran in one of them')
  t.same(await weeks('s3'), ['2027-03-01', '2027-03-08', '2027-03-15'], 'and once only')
})

t.test('--no-seed on add and migrate; schools list shows the seed state', async (t) => {
  const dbs = await testDatabases(t, 'sdcli')
  const cli = async (script: string, ...args: string[]): Promise<Awaited<ReturnType<typeof runScript>>> => await runScript(script, args, dbs.env)
  const [plain, seeded] = [
    await cli('scripts/schools.ts', 'add', 'plain', '--name', 'Plain', '--database', dbs.databaseName('plain'), '--no-seed'),
    await cli('scripts/schools.ts', 'add', 'seeded', '--name', 'Seeded', '--database', dbs.databaseName('seeded'))
  ]
  t.equal(plain.code, 0, plain.stderr)
  t.match(plain.stdout, /Provisioned: .*, no seeds \(--no-seed\)\./)
  t.equal(seeded.code, 0, seeded.stderr)
  t.match(seeded.stdout, `seeds run: ${APP_SEED}.`)
  t.equal((await weeksOf(dbs, 'plain')).length, 0)
  t.equal((await weeksOf(dbs, 'seeded')).length, 2)

  t.equal((await cli('scripts/schools.ts', 'add', 'later', '--name', 'Later', '--database', dbs.databaseName('later'), '--no-migrate')).code, 0)
  const noSeed = await cli('scripts/migrate.ts', '--school', 'later', '--no-seed')
  t.equal(noSeed.code, 0, noSeed.stderr)
  t.notMatch(noSeed.stdout, /Seeds ran/)
  const verified = await cli('scripts/migrate.ts', '--school', 'later', '--verify')
  t.equal(verified.code, 0, verified.stderr)
  t.equal((await weeksOf(dbs, 'later')).length, 0, 'a school provisioned with --no-seed never gets them')

  t.equal((await cli('scripts/schools.ts', 'add', 'last', '--name', 'Last', '--database', dbs.databaseName('last'), '--no-migrate')).code, 0)
  const dry = await cli('scripts/migrate.ts', '--school', 'last', '--dry-run')
  t.match(dry.stdout, `; then seeds ${APP_SEED}`, 'the dry run shows the seeds in the plan')
  const migrated = await cli('scripts/migrate.ts', '--school', 'last')
  t.match(migrated.stdout, `Seeds ran for 1 new school(s): ${APP_SEED}.`)

  const listed = await cli('scripts/schools.ts', 'list')
  t.match(listed.stdout, /^school\s+server\s+status\s+state\s+migration\s+migrated at\s+seeds\s+last error$/m)
  for (const [slug, state] of [['plain', 'skipped'], ['seeded', 'done'], ['later', 'skipped'], ['last', 'done']]) {
    t.match(listed.stdout, new RegExp(`^${slug}\\s+default\\s+active\\s+current\\s+\\S+\\s+\\S+\\s+${state}$`, 'm'), `${slug}: ${state}`)
  }
})
