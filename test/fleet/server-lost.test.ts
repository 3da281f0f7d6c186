// Issue 23: a server lost in the middle of a migrate run. Two servers, the
// suite's ('default') and a cluster of this file's own ('east'). East is
// stopped, or frozen with every one of its processes (postmaster and
// backends) under SIGSTOP, while a school of it is being worked: the run
// must end, fail east's schools naming it, migrate every school of default
// (even one whose migration outlasts east's timeout many times), exit 1,
// and after east is back, --failed must finish the job.
import t, { type Test } from 'tap'
import type { Knex } from 'knex'
import fs from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import { migrationState, schoolsRepository } from '../../src/catalog/schools.js'
import { spawnTsx } from '../../src/cli/tsx-child.js'
import { projectRoot } from '../../src/config.js'
import { hasFailures, migrateSchools, type MigrateOptions } from '../../src/fleet/migrate-schools.js'
import { databaseUrl } from '../../src/postgres/connection.js'
import { attachEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/postgres/embedded.js'
import { appMigrations, DirectoryMigrationSource, MIGRATION_TRY_LOCK_SQL } from '../../src/postgres/migrations.js'
import { compiled } from '../helpers/compiled.js'
import { testCatalog, withDatabase, type TestDatabases } from '../helpers/databases.js'
import { privateCluster, privateClusterConfig } from '../helpers/private-cluster.js'
import { runScript } from '../helpers/run.js'
import { waitFor } from '../helpers/timing.js'

const EAST = 'test-server-lost-east'
const OFFSET = 8
const eastUrl = await privateCluster(t, EAST, OFFSET)
const eastCluster = privateClusterConfig(EAST, OFFSET)

const BASE = '20261123000000_create_lunch_menu'
const SLOW = '20261204000000_add_allergens_slowly'
/** The advisory lock SLOW waits for, held by the test where it wants a migration to last. */
const SLOW_LOCK = [4_242, 23] as const

/** A connection of the test's own, outside the pools migrate may cut off, holding a lock in one database. */
async function lockHolder (serverUrl: string, database: string, sql: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl(serverUrl, database) })
  client.on('error', () => {})
  await client.connect()
  await client.query(sql)
  return client
}

/** Migrate's backends on a server waiting for an advisory lock in `database`. */
async function waitingOnLock (serverUrl: string, database: string): Promise<number> {
  return await withDatabase(serverUrl, 'postgres', async (db) => {
    const { rows } = await db.raw<{ rows: Array<{ n: number }> }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ? AND application_name = 'school-lunch:migrate' AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
      [database])
    return rows[0]?.n ?? 0
  })
}

function eastPostmaster (): number {
  return Number(fs.readFileSync(path.join(eastCluster.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
}

/** The processes `pid` started that are still there. */
function childrenOf (pid: number): number[] {
  return fs.readdirSync(`/proc/${pid}/task`).flatMap((task) =>
    fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter((child) => child !== '').map(Number))
}

/**
 * Freezes every process of east until `fn` is done: open connections then
 * never answer, and new ones hang. The postmaster goes first, so that it
 * forks no more while its children are listed; a backend that ends before
 * its turn needs no freezing. They are thawed in a finally, and on exit
 * too, should a timeout end this process while they are frozen.
 */
async function whileEastIsFrozen<T> (fn: () => Promise<T>): Promise<T> {
  const frozen: number[] = []
  const thaw = (): void => {
    for (const pid of frozen.splice(0)) {
      try { process.kill(pid, 'SIGCONT') } catch {}
    }
  }
  process.once('exit', thaw)
  try {
    const postmaster = eastPostmaster()
    process.kill(postmaster, 'SIGSTOP')
    frozen.push(postmaster)
    for (const pid of childrenOf(postmaster)) {
      try {
        process.kill(pid, 'SIGSTOP')
        frozen.push(pid)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
      }
    }
    return await fn()
  } finally {
    thaw()
    process.off('exit', thaw)
  }
}

/** Schools on default named by slug, and schools on east; east's databases are dropped when the test ends. */
async function catalogWithTwoServers (t: Test, prefix: string, defaults: string[], easts: string[]): Promise<{ dbs: TestDatabases, catalog: Knex }> {
  const { dbs, catalog } = await testCatalog(t, prefix, defaults)
  await catalog('schools').insert(easts.map((slug) => ({ slug, name: slug, database_name: dbs.databaseName(slug), server: 'east' })))
  t.teardown(async () => {
    await withDatabase(eastUrl, 'postgres', async (admin) => {
      for (const slug of easts) await admin.raw(`DROP DATABASE IF EXISTS ${dbs.databaseName(slug)} WITH (FORCE)`)
    }).catch(() => {})
  })
  return { dbs, catalog }
}

t.test('a server stopped mid-run: its schools fail naming it, the others are migrated, exit 1; --failed finishes once it is back', async (t) => {
  const defaults = ['d1', 'd2']
  const easts = ['e1', 'e2', 'e3']
  const { dbs, catalog } = await catalogWithTwoServers(t, 'srvkill', defaults, easts)
  const env = { ...dbs.env, TENANT_SERVERS: `default=${dbs.serverUrl},east=${eastUrl}` }
  // e1's database exists and another migrator holds its lock: east's worker waits there.
  await withDatabase(eastUrl, 'postgres', async (admin) => await admin.raw(`CREATE DATABASE ${dbs.databaseName('e1')}`))
  const holder = await lockHolder(eastUrl, dbs.databaseName('e1'), MIGRATION_TRY_LOCK_SQL)
  t.teardown(async () => { await holder.end().catch(() => {}) })

  const child = spawnTsx(compiled('scripts/migrate.ts'), ['--concurrency', '1', '--no-template', '--no-seed'], { env })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
  t.teardown(() => { child.kill('SIGKILL') })
  await waitFor("east's worker to wait on e1's migration lock", 60_000, async () => await waitingOnLock(eastUrl, dbs.databaseName('e1')) > 0)
  await stopEmbeddedPostgres(eastCluster.dataDir)

  t.equal(await exited, 1, output)
  for (const slug of easts) {
    t.match(output, new RegExp(`^${slug}\\s+east\\s+.*FAILED: server "east" was lost during the run: `, 'm'), `${slug} failed, naming its server`)
  }
  for (const slug of defaults) t.match(output, new RegExp(`^${slug}\\s+default\\s+.*\\s+ok$`, 'm'), `${slug}, on the other server, was migrated`)
  t.same(await schoolsRepository(catalog).failedSlugs(), easts, "east's schools are recorded failed, for --failed to find")

  await attachEmbeddedPostgres(eastCluster, { holder: EAST, log: () => {} })
  const retried = await runScript('scripts/migrate.ts', ['--failed', '--no-template', '--no-seed'], env)
  t.equal(retried.code, 0, retried.stdout + retried.stderr)
  t.match(retried.stdout, /^3 school\(s\): 2 database\(s\) created \(0 from the template\), 3 migrated, 0 already up to date, 0 failed\.$/m, '--failed finishes the job')
  const latest = (await appMigrations.names()).at(-1) ?? BASE
  const schools = await schoolsRepository(catalog).listWithStatus()
  t.same(schools.map((s) => [s.slug, migrationState(s, latest)]), [...defaults, ...easts].map((slug) => [slug, 'current']))
})

t.test('a server frozen mid-run: the run ends after its timeout, and a long migration elsewhere is not cut short', async (t) => {
  const defaults = ['d1', 'd2']
  const easts = ['e1', 'e2', 'e3']
  const { dbs, catalog } = await catalogWithTwoServers(t, 'srvhung', defaults, easts)
  const topology = { ...dbs.topology, servers: { default: dbs.serverUrl, east: eastUrl } }

  // The app's migrations, copied, plus one that waits for a lock the test holds.
  const migrationsDir = path.resolve(projectRoot, '.data/test-server-lost-migrations')
  fs.rmSync(migrationsDir, { recursive: true, force: true })
  fs.mkdirSync(migrationsDir, { recursive: true })
  t.teardown(() => { fs.rmSync(migrationsDir, { recursive: true, force: true }) })
  fs.copyFileSync(path.resolve(projectRoot, `database/app_migrations/${BASE}.ts`), path.join(migrationsDir, `${BASE}.ts`))
  const source = new DirectoryMigrationSource(migrationsDir)
  const run = async (options: Partial<MigrateOptions> = {}): Promise<Awaited<ReturnType<typeof migrateSchools>>> =>
    await migrateSchools(topology, { concurrency: 1, migrations: source, useTemplate: false, serverTimeoutMs: 1_500, ...options })
  t.equal(hasFailures(await run()), false, 'every school starts at the baseline')
  fs.writeFileSync(path.join(migrationsDir, `${SLOW}.ts`), `import type { Knex } from 'knex'
export async function up (knex: Knex): Promise<void> {
  await knex.raw('SELECT pg_advisory_xact_lock(${SLOW_LOCK[0]}, ${SLOW_LOCK[1]})')
  await knex.schema.alterTable('lunch_day', (table) => { table.text('allergens') })
}
export async function down (knex: Knex): Promise<void> {
  await knex.schema.alterTable('lunch_day', (table) => { table.dropColumn('allergens') })
}
`)
  const lockSql = `SELECT pg_advisory_lock(${SLOW_LOCK[0]}, ${SLOW_LOCK[1]})`
  const slowOnDefault = await lockHolder(dbs.serverUrl, dbs.databaseName('d1'), lockSql)
  const slowOnEast = await lockHolder(eastUrl, dbs.databaseName('e1'), lockSql)
  t.teardown(async () => {
    await slowOnDefault.end().catch(() => {})
    await slowOnEast.end().catch(() => {})
  })

  let eastFailed: () => void = () => {}
  const eastAllFailed = new Promise<void>((resolve) => { eastFailed = resolve })
  const rollout = run({ onProgress: ({ failed }) => { if (failed === easts.length) eastFailed() } })
  rollout.catch(() => {})
  await waitFor('the new migration to wait in d1 and in e1', 60_000, async () =>
    await waitingOnLock(dbs.serverUrl, dbs.databaseName('d1')) > 0 && await waitingOnLock(eastUrl, dbs.databaseName('e1')) > 0)

  const report = await whileEastIsFrozen(async () => {
    await eastAllFailed
    t.equal(await waitingOnLock(dbs.serverUrl, dbs.databaseName('d1')), 1, "d1's migration, on the healthy server, still runs after east was given up")
    await slowOnDefault.query(`SELECT pg_advisory_unlock(${SLOW_LOCK[0]}, ${SLOW_LOCK[1]})`)
    return await rollout
  })

  t.equal(hasFailures(report), true, 'the run reports a failure (exit 1 on the command line)')
  for (const slug of defaults) t.same(report.schools.find((s) => s.slug === slug)?.migrations, [SLOW], `${slug} got the migration`)
  for (const slug of easts) {
    t.equal(report.schools.find((s) => s.slug === slug)?.error, 'server "east" was lost during the run: no answer to a liveness probe within 1500 ms', `${slug} failed, naming its server`)
  }
  t.same(await schoolsRepository(catalog).failedSlugs(), easts, "east's schools are recorded failed")

  // East answers again; its holder lets go, and --failed finishes the job.
  await slowOnEast.query(`SELECT pg_advisory_unlock(${SLOW_LOCK[0]}, ${SLOW_LOCK[1]})`)
  const retried = await run({ failedOnly: true })
  t.equal(hasFailures(retried), false, JSON.stringify(retried.schools.filter((s) => s.error !== null)))
  t.same(retried.schools.map((s) => [s.slug, s.migrations]), easts.map((slug) => [slug, [SLOW]]))
  const schools = await schoolsRepository(catalog).listWithStatus()
  t.same(schools.map((s) => [s.slug, migrationState(s, SLOW)]), [...defaults, ...easts].map((slug) => [slug, 'current']))
})
