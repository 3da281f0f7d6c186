// Issue 25: a rollout that stopped early, then a fleet rollback. Two
// servers, the suite's ('default') and a cluster of this file's own
// ('east'), whose postmaster is stopped with SIGSTOP: it accepts TCP
// connections and never answers. The rollout must go on elsewhere and leave
// a record; the rollback must undo one named migration, only where it is
// applied, and never a school's baseline: every school keeps its menus.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import type { Knex } from 'knex'
import { migrationState, schoolsRepository } from '../../src/catalog/schools.js'
import { spawnTsx } from '../../src/cli/tsx-child.js'
import { projectRoot } from '../../src/config.js'
import { RollbackRefused } from '../../src/fleet/migrate-plan.js'
import { hasFailures, migrateSchools, type MigrateOptions } from '../../src/fleet/migrate-schools.js'
import { createKnex, databaseUrl } from '../../src/postgres/connection.js'
import { appMigrations, MIGRATION_TRY_LOCK_SQL } from '../../src/postgres/migrations.js'
import { compiled } from '../helpers/compiled.js'
import { testCatalog, withDatabase } from '../helpers/databases.js'
import { BASE, baselineMigrations } from '../helpers/migration-copies.js'
import { privateCluster } from '../helpers/private-cluster.js'
import { runScript } from '../helpers/run.js'
import { waitFor } from '../helpers/timing.js'

// The project's own migrations, which the command line runs.
const PROJECT = await appMigrations.names()
const ALLERGENS = '20261203000000_add_allergens'

const EAST = 'test-rollout-east'
const eastUrl = await privateCluster(t, EAST, 7)

// The app's baseline, copied, so that this file can add a migration.
const migrations = baselineMigrations(t, 'test-rollout-migrations')
const { source } = migrations

/** SIGSTOP on east's postmaster until `fn` is done: new connections hang, as on a hung host. */
async function whileEastHangs<T> (fn: () => Promise<T>): Promise<T> {
  const pid = Number(fs.readFileSync(path.resolve(projectRoot, '.data', EAST, 'postmaster.pid'), 'utf8').split('\n')[0])
  process.kill(pid, 'SIGSTOP')
  try {
    return await fn()
  } finally {
    process.kill(pid, 'SIGCONT')
  }
}

t.test('a hung server: the others are migrated, its schools recorded failed; a rollback loses no menu', async (t) => {
  const defaults = ['d1', 'd2', 'd3']
  const easts = ['e1', 'e2']
  const { dbs, catalog } = await testCatalog(t, 'rostop', defaults)
  await catalog('schools').insert(easts.map((slug) => ({ slug, name: slug, database_name: dbs.databaseName(slug), server: 'east' })))
  const topology = { ...dbs.topology, servers: { default: dbs.serverUrl, east: eastUrl } }
  const run = async (options: Partial<MigrateOptions> = {}): Promise<Awaited<ReturnType<typeof migrateSchools>>> =>
    // No template: the suite's server is shared, and its template with it.
    await migrateSchools(topology, { concurrency: 2, migrations: source, useTemplate: false, ...options })
  const serverOf = (slug: string): string => easts.includes(slug) ? eastUrl : dbs.serverUrl
  const onSchool = async <T>(slug: string, fn: (db: Knex) => Promise<T>): Promise<T> => await withDatabase(serverOf(slug), dbs.databaseName(slug), fn)
  const menus = async (slug: string): Promise<string[]> => await onSchool(slug, async (db) =>
    await db('lunch_day').orderBy('day').pluck('menu_details') as string[])
  const history = async (slug: string): Promise<string[]> => await onSchool(slug, async (db) =>
    await db('knex_migrations').orderBy('id').pluck('name') as string[])
  const states = async (): Promise<Record<string, string>> => {
    const latest = (await source.names()).at(-1)
    const schools = await schoolsRepository(catalog).listWithStatus()
    return Object.fromEntries(schools.map((s) => [s.slug, migrationState(s, latest)]))
  }
  const all = [...defaults, ...easts]

  // Every school at the baseline, with a week of menus.
  t.equal(hasFailures(await run()), false)
  for (const slug of all) {
    await onSchool(slug, async (db) => {
      const [week] = await db('lunch_week').insert({ week_of: '2026-11-30' }).returning('id') as Array<{ id: string }>
      await db('lunch_day').insert({ lunch_week_id: week?.id, day: '2026-11-30', menu_details: `soup at ${slug}` })
    })
  }

  // A release adds a migration; east hangs during the rollout.
  migrations.addAllergens(ALLERGENS)
  const rollout = await whileEastHangs(async () => await run())
  t.equal(hasFailures(rollout), true, 'the run reports a failure')
  for (const slug of defaults) {
    t.same(rollout.schools.find((s) => s.slug === slug)?.migrations, [ALLERGENS], `${slug}, on the healthy server, got the migration`)
  }
  for (const slug of easts) {
    t.match(rollout.schools.find((s) => s.slug === slug)?.error, /^server "east" could not be reached: /, `${slug} failed, naming its server`)
    t.same(await history(slug), [BASE], `${slug} is untouched`)
  }
  t.same(await schoolsRepository(catalog).failedSlugs(), easts, "east's schools are recorded failed, for --failed to find")
  t.same(await states(), { d1: 'current', d2: 'current', d3: 'current', e1: 'failed', e2: 'failed' })
  const retry = await run({ failedOnly: true, dryRun: true })
  t.same(retry.schools.map((s) => [s.slug, s.action, s.reason]), easts.map((slug) => [slug, 'migrate', 'its last run failed']),
    'once east is back, --failed would migrate exactly its schools')

  // The release is rolled back, as an operator would.
  const preview = await run({ rollback: {}, dryRun: true })
  t.same(preview.schools.map((s) => [s.slug, s.migrations, s.error]), all.map((slug) => [slug, defaults.includes(slug) ? [ALLERGENS] : [], null]),
    'the dry run names, per school, the migration it would undo, or none')
  t.same(await history('d1'), [BASE, ALLERGENS], 'and undoes nothing')

  const back = await run({ rollback: {} })
  t.equal(hasFailures(back), false, JSON.stringify(back.schools.filter((s) => s.error !== null)))
  t.same(back.rollback, { target: BASE })
  t.same(back.schools.map((s) => [s.slug, s.migrations]), all.map((slug) => [slug, defaults.includes(slug) ? [ALLERGENS] : []]),
    'the new migration is undone where it was applied; the others are left alone')
  for (const slug of all) {
    t.same(await history(slug), [BASE], `${slug} is at the baseline`)
    t.same(await menus(slug), [`soup at ${slug}`], `${slug} keeps its menus`)
  }
  t.same(await states(), Object.fromEntries(all.map((slug) => [slug, 'behind'])), 'the catalog records every school behind the latest migration')

  // Now no school has the new migration: the state of the bug. Rolling back again undoes nothing.
  const again = await run({ rollback: {} })
  t.same(again.schools.map((s) => [s.slug, s.migrations, s.error]), all.map((slug) => [slug, [], null]), 'a second rollback undoes nothing')
  for (const slug of all) t.same(await menus(slug), [`soup at ${slug}`], `${slug} still has its menus`)

  // With the code of the old release, a plain rollback would undo the baseline: refused, nothing touched.
  migrations.remove(ALLERGENS)
  await t.rejects(run({ rollback: {} }), RollbackRefused, 'undoing the baseline is never a default')
  await t.rejects(run({ rollback: { to: BASE } }), /is the newest migration: there is nothing after it to undo/)
  for (const slug of all) t.same(await menus(slug), [`soup at ${slug}`], `${slug}: the refusals changed nothing`)

  // The release comes back: a plain run finishes the job everywhere.
  migrations.addAllergens(ALLERGENS)
  const forward = await run()
  t.equal(hasFailures(forward), false)
  t.same(forward.schools.map((s) => [s.slug, s.action, s.migrations]), all.map((slug) => [slug, 'migrate', [ALLERGENS]]))
  t.same(await states(), Object.fromEntries(all.map((slug) => [slug, 'current'])))
})

t.test('--rollback on the command line: the plan, the refusals, and --undo-baseline --yes', async (t) => {
  const { dbs, catalog } = await testCatalog(t, 'rocli', ['p1', 'p2'])
  const migrate = async (args: string[]): Promise<Awaited<ReturnType<typeof runScript>>> => await runScript('scripts/migrate.ts', args, dbs.env)
  t.equal((await migrate([])).code, 0)
  await withDatabase(dbs.serverUrl, dbs.databaseName('p1'), async (db) => await db('lunch_week').insert({ week_of: '2027-03-01' }))

  // A plain rollback takes every school back one migration, and says so first.
  const [baseline, newest] = [PROJECT[0] as string, PROJECT.at(-1) as string]
  const preview = await migrate(['--rollback', '--dry-run'])
  t.equal(preview.code, 0, preview.stderr)
  for (const slug of ['p1', 'p2']) {
    t.match(preview.stdout, new RegExp(`^${slug}\\s+default\\s+rocli_${slug}\\s+existed\\s+existed\\s+would undo: ${newest}\\s+ok\\s+rollback: back to `, 'm'), `${slug}: the plan names the migration`)
  }

  const unconfirmed = await migrate(['--rollback', '--undo-baseline'])
  t.equal(unconfirmed.code, 2)
  t.match(unconfirmed.stderr, `--undo-baseline would undo ${[...PROJECT].reverse().join(', ')} in every school it names, dropping their tables and all their data. Run it with --dry-run`)
  for (const args of [['--to', baseline], ['--rollback', '--to', baseline, '--undo-baseline'], ['--rollback', '--to', 'nosuch'], ['--rollback', '--to', newest]]) {
    const bad = await migrate(args)
    t.equal(bad.code, 2, args.join(' '))
  }
  t.same(await withDatabase(dbs.serverUrl, dbs.databaseName('p1'), async (db) => await db('lunch_week').where({ week_of: '2027-03-01' }).pluck('week_of')),
    ['2027-03-01'], 'p1 keeps its week')

  const plan = await migrate(['--rollback', '--undo-baseline', '--dry-run', '--school', 'p1'])
  t.equal(plan.code, 0, plan.stderr)
  t.match(plan.stdout, new RegExp(`^p1\\s+default\\s+rocli_p1\\s+existed\\s+existed\\s+would undo: ${[...PROJECT].reverse().join(', ')}\\s+ok\\s+rollback: undo every migration it has \\(--undo-baseline\\)$`, 'm'))
  t.match(plan.stdout, /^Dry run, nothing changed: back to before the first migration, 1 of 1 school\(s\) would have migrations undone, 0 have none to undo/m)

  const dropped = await migrate(['--rollback', '--undo-baseline', '--yes', '--school', 'p1'])
  t.equal(dropped.code, 0, dropped.stdout + dropped.stderr)
  t.notMatch(dropped.stdout, /^Template on/m, 'a rollback limited to some schools leaves the template alone')
  t.match(dropped.stdout, /^Rolled back to before the first migration: 1 school\(s\), 1 with migrations undone, 0 with none to undo \(left alone\), 0 failed\.$/m)
  t.same(await withDatabase(dbs.serverUrl, dbs.databaseName('p1'), async (db) => await db('knex_migrations').pluck('name')), [], 'p1 has no migration left')
  t.same(await withDatabase(dbs.serverUrl, dbs.databaseName('p2'), async (db) => await db('knex_migrations').orderBy('id').pluck('name')), PROJECT, 'p2 was not named')
  const status = await migrate(['--status'])
  t.match(status.stdout, /^p1\s+default\s+active\s+behind\s/m, 'p1 is recorded behind, so a plain migrate brings it back')
  const back = await migrate([])
  t.match(back.stdout, new RegExp(`^p1\\s+default\\s+rocli_p1\\s+existed\\s+existed\\s+${PROJECT.length} applied\\s+ok$`, 'm'))
  t.same(await schoolsRepository(catalog).failedSlugs(), [])
})

t.test('a run killed before it finished leaves its unfinished schools recorded failed', async (t) => {
  const slugs = ['k1', 'k2', 'k3']
  const { dbs, catalog } = await testCatalog(t, 'rokill', slugs)
  // k1's database exists, and another migrator holds its lock: the run waits there.
  await dbs.admin.raw(`CREATE DATABASE ${dbs.databaseName('k1')}`)
  // One connection, so the session lock and its release share it.
  const holder = createKnex(databaseUrl(dbs.serverUrl, dbs.databaseName('k1')), { max: 1, min: 1 })
  t.teardown(async () => { await holder.destroy() })
  t.same((await holder.raw<{ rows: Array<{ locked: boolean }> }>(MIGRATION_TRY_LOCK_SQL)).rows, [{ locked: true }])

  const child = spawnTsx(compiled('scripts/migrate.ts'), ['--concurrency', '1', '--no-template'], { env: dbs.env })
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
  child.stdout.resume()
  child.stderr.resume()
  await waitFor('the run to wait on k1\'s migration lock', 60_000, async () => {
    const { rows } = await dbs.admin.raw<{ rows: unknown[] }>(
      "SELECT 1 FROM pg_stat_activity WHERE datname = ? AND wait_event_type = 'Lock' AND wait_event = 'advisory'", [dbs.databaseName('k1')])
    return rows.length > 0
  })
  child.kill('SIGKILL')
  await exited
  await holder.raw('SELECT pg_advisory_unlock_all()')

  const status = await schoolsRepository(catalog).listWithStatus()
  t.same(status.map((s) => s.slug), slugs)
  for (const school of status) {
    t.match(school.lastError, /^not finished by the migrate run started \d{4}-\d\d-\d\dT[\d:.]+Z \(stopped early, or still running\)$/, `${school.slug} is recorded unfinished`)
  }
  const retried = await runScript('scripts/migrate.ts', ['--failed', '--no-template'], dbs.env)
  t.equal(retried.code, 0, retried.stdout + retried.stderr)
  t.match(retried.stdout, /^3 school\(s\): 2 database\(s\) created \(0 from the template\), 3 migrated, 0 already up to date, 0 failed\.$/m, '--failed finishes the job')
  t.same(await schoolsRepository(catalog).failedSlugs(), [])
})
