import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createSigner } from 'fast-jwt'
import type { Knex } from 'knex'
import t from 'tap'
import { openCatalog, prepareCatalog } from '../src/catalog/catalog.js'
import { projectRoot } from '../src/config.js'
import { isNoop, migrateSchools } from '../src/fleet/migrate-schools.js'
import { createKnex, databaseUrl } from '../src/postgres/connection.js'
import { TEST_SECRET } from './helpers/app.js'
import { buildOnce } from './helpers/build.js'
import { testDatabases, withDatabase, type TestDatabases } from './helpers/databases.js'
import { generateSigningKey, tokenSigner } from './helpers/jwks-server.js'
import { startServerProcess, type RunResult } from './helpers/run.js'

/*
 * The production artefact: what `npm run build` writes to dist/, run as a
 * plain `node` process, as a container runtime or systemd would run it.
 */

t.before(buildOnce)

const dist = (...parts: string[]): string => path.join(projectRoot, 'dist', ...parts)

async function migrationFiles (dir: string, extension: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((f) => f.endsWith(extension)).map((f) => f.slice(0, -extension.length)).sort()
}

t.test('npm run build compiles the server, the migrate command and every migration', async (t) => {
  await fs.access(dist('src/server.js'))
  await fs.access(dist('scripts/migrate.js'))
  for (const kind of ['catalog_migrations', 'app_migrations']) {
    const sources = await migrationFiles(path.join(projectRoot, 'database', kind), '.ts')
    t.ok(sources.length > 0, `${kind} has migrations`)
    t.same(await migrationFiles(dist('database', kind), '.js'), sources, `${kind}: one .js per .ts, same names`)
  }
})

/** `node dist/scripts/migrate.js`, the release's migrate job. */
async function compiledMigrate (env: Record<string, string>, args: string[] = []): Promise<RunResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [dist('scripts/migrate.js'), ...args], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, ENV_FILE: '/dev/null' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    child.on('error', reject)
    child.on('close', (code) => { resolve({ code, stdout, stderr }) })
  })
}

async function history (serverUrl: string, database: string): Promise<string[]> {
  return await withDatabase(serverUrl, database, async (db: Knex) =>
    (await db('knex_migrations').orderBy('id').select<Array<{ name: string }>>('name')).map((row) => row.name))
}

async function addSchools (dbs: TestDatabases, slugs: string[]): Promise<void> {
  const catalog = openCatalog(dbs.catalogUrl, 1)
  try {
    await catalog('schools').insert(slugs.map((slug) => ({ slug, name: `School ${slug}`, database_name: dbs.databaseName(slug) })))
  } finally {
    await catalog.destroy()
  }
}

t.test('compiled and TypeScript migrations are one history', async (t) => {
  const dbs = await testDatabases(t, 'bldmig')
  const appNames = await migrationFiles(path.join(projectRoot, 'database/app_migrations'), '.ts')
  const catalogNames = await migrationFiles(path.join(projectRoot, 'database/catalog_migrations'), '.ts')

  // .ts first (tsx), then the build: nothing left to do, nothing recorded twice.
  await prepareCatalog(dbs.catalogUrl)
  await addSchools(dbs, ['ts-first'])
  const fromTs = await migrateSchools(dbs.topology, { concurrency: 2, only: ['ts-first'] })
  t.same(fromTs.schools.map((s) => s.error), [null])
  const compiledRun = await compiledMigrate(dbs.env, ['--verify'])
  t.equal(compiledRun.code, 0, `the compiled migrate finds nothing to redo\n${compiledRun.stdout}${compiledRun.stderr}`)
  t.same(await history(dbs.serverUrl, 'bldmig_catalog'), catalogNames, 'catalog history: each name once, no extension')
  t.same(await history(dbs.serverUrl, dbs.databaseName('ts-first')), appNames, 'school history unchanged')

  // The build first, then .ts: the same.
  await addSchools(dbs, ['js-first'])
  const created = await compiledMigrate(dbs.env, ['--school', 'js-first'])
  t.equal(created.code, 0, `the compiled migrate sets up a new school\n${created.stdout}${created.stderr}`)
  t.same(await history(dbs.serverUrl, dbs.databaseName('js-first')), appNames, 'recorded under the .ts names')
  const again = await migrateSchools(dbs.topology, { concurrency: 2, only: ['js-first'], verify: true })
  t.same(again.schools.map((s) => ({ error: s.error, applied: s.migrations })), [{ error: null, applied: [] }], 'tsx sees it up to date')
  t.ok(isNoop(again), 'and changes nothing')
  t.same(await history(dbs.serverUrl, dbs.databaseName('js-first')), appNames)
})

const sign = createSigner({ key: TEST_SECRET, algorithm: 'HS256', expiresIn: 3_600_000 })

/** A transaction holding a lock on one school's table, so requests wait in PostgreSQL. */
async function lockTable (serverUrl: string, database: string): Promise<() => Promise<void>> {
  const db = createKnex(databaseUrl(serverUrl, database), { max: 1, applicationName: 'build-test-lock' })
  const trx = await db.transaction()
  await trx.raw('LOCK TABLE lunch_week IN ACCESS EXCLUSIVE MODE')
  return async () => {
    await trx.rollback().catch(() => {})
    await db.destroy()
  }
}

async function until (what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`)
    await sleep(25)
  }
}

t.test('node dist/src/server.js: SIGTERM to it alone finishes in-flight requests and exits 0; a second signal waits', async (t) => {
  const dbs = await testDatabases(t, 'bldsig')
  await prepareCatalog(dbs.catalogUrl)
  await addSchools(dbs, ['busy'])
  t.same((await migrateSchools(dbs.topology, { concurrency: 1 })).schools.map((s) => s.error), [null])

  const server = await startServerProcess({ ...dbs.env, TENANT_POOL_SIZE: '20', SHUTDOWN_DRAIN_MS: '0' }, { from: 'build' })
  t.teardown(() => { if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL') })
  const get = async (): Promise<string> => {
    try {
      const res = await fetch(`${server.address}/api/lunch-weeks`, { headers: { authorization: `Bearer ${sign({ school: 'busy' })}` } })
      return `${res.status} ${await res.text()}`
    } catch (error) {
      return `no answer: ${(error as Error).message}`
    }
  }
  t.equal(await get(), '200 []', 'the compiled server serves')

  const release = await lockTable(dbs.serverUrl, dbs.databaseName('busy'))
  t.teardown(release)
  const inFlight = Array.from({ length: 15 }, get)
  const waiting = async (): Promise<number> => {
    const { rows } = await dbs.admin.raw<{ rows: Array<{ n: string }> }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = ? AND application_name = 'school-lunch:api' AND wait_event_type = 'Lock'",
      [dbs.databaseName('busy')])
    return Number(rows[0]?.n)
  }
  await until('15 requests waiting on the lock', async () => await waiting() === 15)

  server.child.kill('SIGTERM')
  await server.printed(/shutting down: finishing in-flight requests/)
  server.child.kill('SIGTERM')
  server.child.kill('SIGINT')
  // Pending together, the two may be delivered in either order.
  await server.printed(/already shutting down; SIGTERM ignored until the grace period ends/)
  await server.printed(/already shutting down; SIGINT ignored until the grace period ends/)
  t.pass('the second SIGTERM and a SIGINT were logged as ignored')
  t.equal(server.child.exitCode, null, 'still running: the repeated signals did not stop it halfway')
  t.equal(await waiting(), 15, 'the 15 requests are still being served')

  await release()
  const answers = await Promise.all(inFlight)
  t.same(answers.filter((a) => a !== '200 []'), [], 'every in-flight request got its 200')
  t.equal(await server.exited, 0, 'exit code 0')
  t.notMatch(server.output(), /shutdown took too long/, 'within the grace period')
})

t.test('node dist/src/server.js with a key set it cannot reach starts, and answers 503 for tokens', async (t) => {
  const dbs = await testDatabases(t, 'bldjwks')
  // A port that was free a moment ago: nothing answers there.
  const closed = http.createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => { resolve() }))

  const server = await startServerProcess({
    ...dbs.env,
    JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    JWT_AUDIENCE: 'https://api.example',
    SHUTDOWN_DRAIN_MS: '0'
  }, { from: 'build' })
  t.teardown(() => { if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL') })
  await server.printed(/key set: fetch failed, could not connect/)
  t.equal((await fetch(`${server.address}/ready`)).status, 200, 'ready: readiness is about the catalog')
  const token = tokenSigner(generateSigningKey('k1'))({ aud: 'https://api.example', school: 'x' })
  const res = await fetch(`${server.address}/api/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(res.status, 503)
  t.match(await res.json(), { code: 'AUTH_KEYS_UNAVAILABLE' })
  const retryAfter = Number(res.headers.get('retry-after'))
  t.ok(retryAfter >= 1 && retryAfter <= 30, `Retry-After ${retryAfter}: the seconds left of the 30 s cooldown that followed the failed fetch at start`)
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0)
})
