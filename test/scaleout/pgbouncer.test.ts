// The API's school connections through Debian's PgBouncer 1.18, run from
// deploy/pgbouncer.ini, in front of a cluster of this file's own (the
// pooler's role is cluster-wide, and other files' migrate runs, which have
// no pooler, take its login away on the suite's server).
import t from 'tap'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { createDevSigner } from '../../src/cli/dev-signer.js'
import { DEVELOPMENT_JWT_SECRET, DEVELOPMENT_ROLE_SECRET, loadConfig } from '../../src/config.js'
import { hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { createKnex, databaseUrl, openConnection } from '../../src/postgres/connection.js'
import { POOLER_ROLE, poolerPassword, schoolRoleName, schoolRoleUrl, schoolStartup } from '../../src/postgres/roles.js'
import type { Topology } from '../../src/postgres/topology.js'
import { pgbouncerSetting } from '../../scripts/deploy/daemons.js'
import { privateCluster } from '../helpers/private-cluster.js'
import { scaleoutToolsReady, startPgBouncer } from '../helpers/scaleout.js'
import { waitFor } from '../helpers/timing.js'

const POOL_SIZE = pgbouncerSetting('default_pool_size')
const MAX_CLIENT_CONN = pgbouncerSetting('max_client_conn')
// Each school's one week, so an answer shows whose database it came from.
const WEEKS: Record<string, string> = { alpha: '2027-01-04', beta: '2027-01-11', gamma: '2027-01-18' }
const sign = await createDevSigner({ secret: DEVELOPMENT_JWT_SECRET, expiresInMs: 3_600_000 })
const auth = (slug: string): { authorization: string } => ({ authorization: `Bearer ${sign({ sub: `staff-of-${slug}`, school: slug })}` })

if (scaleoutToolsReady(t)) {
  const serverUrl = await privateCluster(t, 'test-scaleout-pgbouncer', 9)
  const pgbouncer = await startPgBouncer(t, 'test-scaleout-pgbouncer-pooler', Number(new URL(serverUrl).port), DEVELOPMENT_ROLE_SECRET)
  const catalogUrl = databaseUrl(serverUrl, 'catalog')
  const topology: Topology = { catalogUrl, servers: { default: serverUrl }, poolers: { default: pgbouncer.url }, embedded: null, release: () => {} }
  const env = { DATABASE_URL: catalogUrl, TENANT_SERVERS: `default=${serverUrl}`, TENANT_POOLERS: `default=${pgbouncer.url}`, NODE_ENV: 'test', LOG_LEVEL: 'info' }
  const admin = createKnex(serverUrl, { max: 2 })
  t.teardown(async () => { await admin.destroy() })

  await prepareCatalog(catalogUrl)
  const catalog = openCatalog(catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  const onboard = async (slugs: string[]): Promise<void> => {
    await catalog('schools').insert(slugs.map((slug) => ({ slug, name: `School ${slug}`, database_name: `pgb_${slug}` })))
    const report = await migrateSchools(topology, { concurrency: 4, only: slugs })
    if (hasFailures(report)) throw new Error(JSON.stringify(report.schools))
  }
  await onboard(Object.keys(WEEKS))

  const logs: Array<Record<string, unknown>> = []
  const startApp = async (extra: Record<string, string> = {}): Promise<FastifyInstance> => {
    const stream = new Writable({
      write (chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
        done()
      }
    })
    const app = await buildApp({ config: loadConfig({ ...env, ...extra }), catalogUrl, servers: topology.servers, logger: { level: 'info', stream } })
    await app.ready()
    t.teardown(async () => { await app.close() })
    return app
  }
  const app = await startApp()
  for (const [slug, weekOf] of Object.entries(WEEKS)) {
    const created = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: auth(slug), payload: { weekOf } })
    if (created.statusCode !== 201) throw new Error(created.body)
  }
  const weeksOf = async (target: FastifyInstance, slug: string): Promise<{ status: number, weeks: string[], code: string | null }> => {
    const res = await target.inject({ url: '/api/lunch-weeks', headers: auth(slug) })
    const body = res.json<Array<{ weekOf: string }> | { code: string }>()
    return Array.isArray(body) ? { status: res.statusCode, weeks: body.map((w) => w.weekOf), code: null } : { status: res.statusCode, weeks: [], code: body.code }
  }
  /** Logs a school's role in as the API does through the pooler: its URL, its startup settings. */
  const connectAs = async (role: string, password: string, database: string): Promise<Awaited<ReturnType<typeof openConnection>>> => {
    const url = new URL(pgbouncer.url)
    url.username = role
    url.password = encodeURIComponent(password)
    url.pathname = `/${database}`
    return await openConnection(url.toString(), { applicationName: 'school-lunch:test', connectTimeoutMillis: 2_000, ...schoolStartup(true) })
  }
  const schoolConnection = async (slug: string): Promise<Awaited<ReturnType<typeof openConnection>>> =>
    await openConnection(schoolRoleUrl(pgbouncer.url, `pgb_${slug}`, DEVELOPMENT_ROLE_SECRET), { applicationName: 'school-lunch:test', connectTimeoutMillis: 5_000, ...schoolStartup(true) })

  t.test('the API checks the pooler\'s limits at start, and its schools are served through it', async (t) => {
    const budget = logs.find((line) => typeof line.msg === 'string' && line.msg.startsWith('connection budget on default'))
    t.match(budget?.msg, `connection budget on default: 100 (TENANT_CONNECTIONS_MAX unset: the smaller of 100 and PgBouncer's max_client_conn ${MAX_CLIENT_CONN}; ` +
      `it holds at most ${POOL_SIZE} backend(s) per school (default_pool_size, pool_mode transaction))`, 'the start-up check read PgBouncer\'s own limits')

    for (const [slug, weekOf] of Object.entries(WEEKS)) t.same(await weeksOf(app, slug), { status: 200, weeks: [weekOf], code: null }, `${slug} reads its own week, and only it`)
    const { rows } = await admin.raw<{ rows: Array<{ datname: string, usename: string }> }>(
      "SELECT DISTINCT datname, usename FROM pg_stat_activity WHERE datname LIKE 'pgb\\_%' AND usename LIKE 'school\\_%' ORDER BY 1")
    t.same(rows, Object.keys(WEEKS).map((slug) => ({ datname: `pgb_${slug}`, usename: schoolRoleName(`pgb_${slug}`) })),
      'PostgreSQL sees each school\'s own role on its own database, logged in by PgBouncer')

    // Every school's first week has id 1: the id in alpha's token names alpha's week.
    const gammaWeek = await app.inject({ url: '/api/lunch-weeks', headers: auth('gamma') })
    const id = gammaWeek.json<Array<{ id: string }>>()[0]?.id
    const crossed = await app.inject({ url: `/api/lunch-weeks/${id}`, headers: auth('alpha') })
    t.equal(crossed.json<{ weekOf: string }>().weekOf, WEEKS.alpha, 'gamma\'s week id, asked for with alpha\'s token, gives alpha\'s own week')

    const tooMany = loadConfig({ ...env, TENANT_CONNECTIONS_MAX: String(MAX_CLIENT_CONN + 1) })
    await t.rejects(buildApp({ config: tooMany, catalogUrl, servers: topology.servers, logger: false }), {
      name: 'BudgetTooLarge',
      message: `TENANT_CONNECTIONS_MAX for server "default" is ${MAX_CLIENT_CONN + 1}, more than its pooler allows: PgBouncer's max_client_conn ${MAX_CLIENT_CONN}`
    }, 'a budget the pooler cannot hold stops the start with one line')
  })

  t.test('a school role reaches its own database only, and a role that may not log in is refused', async (t) => {
    const alphaRole = schoolRoleName('pgb_alpha')
    const alphaPassword = schoolRoleUrl(pgbouncer.url, 'pgb_alpha', DEVELOPMENT_ROLE_SECRET)
    const password = decodeURIComponent(new URL(alphaPassword).password)
    const own = await connectAs(alphaRole, password, 'pgb_alpha')
    t.same((await own.query('SELECT current_user AS role, current_database() AS db')).rows, [{ role: alphaRole, db: 'pgb_alpha' }])
    await own.end()
    for (const database of ['pgb_beta', 'catalog', 'postgres']) {
      // PgBouncer's answers differ: the lookup is missing (postgres), or its
      // user may not connect at all (the catalog), where PgBouncer holds the
      // client until the client gives up. Nobody gets in.
      await t.rejects(connectAs(alphaRole, password, database), /no such user|bouncer config error|timeout expired/, `alpha's role cannot log in to ${database}`)
    }
    await t.rejects(connectAs('postgres', 'postgres', 'pgb_alpha'), /no such user/, 'nor can the superuser, through the pooler')

    // PgBouncer's CVE-2025-2291: no secret for a role that cannot log in or has expired.
    for (const [change, undo] of [['NOLOGIN', 'LOGIN'], ["VALID UNTIL '2020-01-01'", "VALID UNTIL 'infinity'"]]) {
      await admin.raw(`ALTER ROLE ${alphaRole} ${change}`)
      await t.rejects(connectAs(alphaRole, password, 'pgb_alpha'), /no such user/, `a role with ${change} is refused`)
      await admin.raw(`ALTER ROLE ${alphaRole} ${undo}`)
    }
    const again = await connectAs(alphaRole, password, 'pgb_alpha')
    await again.end()
    t.pass('and logs in again once allowed')
  })

  t.test('the pooler\'s auth user runs the lookup and reads nothing else', async (t) => {
    const asPooler = async (database: string): Promise<Awaited<ReturnType<typeof openConnection>>> => {
      const url = new URL(databaseUrl(serverUrl, database))
      url.username = POOLER_ROLE
      url.password = encodeURIComponent(poolerPassword(DEVELOPMENT_ROLE_SECRET))
      return await openConnection(url.toString(), { applicationName: 'school-lunch:test', connectTimeoutMillis: 5_000 })
    }
    const client = await asPooler('pgb_alpha')
    t.teardown(async () => { await client.end() })
    t.same((await client.query(`SELECT usename FROM ${POOLER_ROLE}.lookup($1)`, [schoolRoleName('pgb_alpha')])).rows, [{ usename: schoolRoleName('pgb_alpha') }],
      'the lookup answers for the school\'s own role')
    for (const role of [schoolRoleName('pgb_beta'), 'postgres', POOLER_ROLE]) {
      t.same((await client.query(`SELECT usename FROM ${POOLER_ROLE}.lookup($1)`, [role])).rows, [], `and for nobody else: ${role}`)
    }
    for (const sql of ['SELECT * FROM lunch_week', 'SELECT * FROM knex_migrations', 'SELECT rolpassword FROM pg_authid', 'CREATE TABLE stolen (x int)']) {
      await t.rejects(client.query(sql), /permission denied/, `refused: ${sql}`)
    }
    await t.rejects(asPooler('catalog'), /permission denied for database "catalog"/, 'it cannot connect to the catalog')
  })

  t.test('a statement over the timeout is cancelled through the pooler', async (t) => {
    const alpha = await schoolConnection('alpha')
    t.same((await alpha.query('SHOW statement_timeout')).rows, [{ statement_timeout: '15s' }], 'the school\'s sessions start with the timeout its role carries')
    await alpha.end()
    // A school of its own, with a shorter timeout on its role before its first session.
    await onboard(['slow'])
    await admin.raw(`ALTER ROLE ${schoolRoleName('pgb_slow')} SET statement_timeout = 300`)
    const slow = await schoolConnection('slow')
    t.teardown(async () => { await slow.end() })
    await t.rejects(slow.query('SELECT pg_sleep(5)'), { code: '57014', message: /statement timeout/ }, 'PostgreSQL cancels it')
  })

  t.test('a school onboarded while PgBouncer runs is served without a reload; a suspended one is refused', async (t) => {
    await onboard(['delta'])
    const created = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: auth('delta'), payload: { weekOf: '2027-02-01' } })
    t.equal(created.statusCode, 201, created.body)
    t.same(await weeksOf(app, 'delta'), { status: 200, weeks: ['2027-02-01'], code: null })

    await catalog('schools').where({ slug: 'delta' }).update({ status: 'suspended' })
    await waitFor('the suspension to reach the app', 10_000, async () => (await weeksOf(app, 'delta')).status === 403)
    t.same(await weeksOf(app, 'delta'), { status: 403, weeks: [], code: 'SCHOOL_SUSPENDED' })
  })

  t.test('server backends stay within schools × the pool size, with three API processes', async (t) => {
    const apps = [app, await startApp(), await startApp()]
    const slugs = Object.keys(WEEKS)
    const peak = new Map<string, number>()
    const sampling = new AbortController()
    const sampler = (async () => {
      while (!sampling.signal.aborted) {
        const { rows } = await admin.raw<{ rows: Array<{ datname: string, n: string }> }>(
          "SELECT datname, count(*) AS n FROM pg_stat_activity WHERE usename LIKE 'school\\_pgb\\_%' GROUP BY datname")
        for (const row of rows) peak.set(row.datname, Math.max(peak.get(row.datname) ?? 0, Number(row.n)))
      }
    })()
    const answers: Array<{ status: number, weeks: string[], slug: string }> = []
    await Promise.all(Array.from({ length: 24 }, async (_, worker) => {
      for (let i = 0; i < 20; i++) {
        const slug = slugs[(worker + i) % slugs.length] as string
        answers.push({ slug, ...(await weeksOf(apps[worker % apps.length] as FastifyInstance, slug)) })
      }
    }))
    sampling.abort()
    await sampler
    t.same(answers.filter((a) => a.status !== 200 || a.weeks.join() !== WEEKS[a.slug]), [], '480 requests, each answered with its own school\'s week')
    const worst = Math.max(...peak.values())
    t.ok(worst <= POOL_SIZE, `at most ${POOL_SIZE} backends per school (seen: ${JSON.stringify(Object.fromEntries(peak))})`)
  })

  t.test('PgBouncer restarted under load: 503 while it is down, then recovery, never a wrong answer', async (t) => {
    const slugs = Object.keys(WEEKS)
    const seen: Array<{ slug: string, status: number, weeks: string[], code: string | null }> = []
    const stopLoad = new AbortController()
    const load = Promise.all(Array.from({ length: 6 }, async (_, worker) => {
      for (let i = 0; !stopLoad.signal.aborted; i++) {
        const slug = slugs[(worker + i) % slugs.length] as string
        seen.push({ slug, ...(await weeksOf(app, slug)) })
      }
    }))
    const count = (f: (a: typeof seen[number]) => boolean): number => seen.filter(f).length
    await waitFor('requests to flow', 10_000, () => count((a) => a.status === 200) > 30)
    await pgbouncer.stop()
    await waitFor('a request to find the pooler gone', 10_000, () => count((a) => a.status === 503) > 0)
    await pgbouncer.start()
    const before = seen.length
    await waitFor('every school to be served again', 20_000, () => slugs.every((slug) => seen.slice(before).some((a) => a.slug === slug && a.status === 200)))
    const recovered = seen.length
    await waitFor('a while of service after recovery', 20_000, () => seen.length > recovered + 60)
    stopLoad.abort()
    await load

    const wrong = seen.filter((a) => a.status === 200 && a.weeks.join() !== WEEKS[a.slug])
    const other = seen.filter((a) => a.status !== 200 && !(a.status === 503 && a.code === 'SCHOOL_DATABASE_UNAVAILABLE'))
    t.same(wrong, [], 'no answer held another school\'s data')
    t.same(other, [], 'every failure was a 503 SCHOOL_DATABASE_UNAVAILABLE')
    t.same(seen.slice(recovered).filter((a) => a.status !== 200), [], 'after recovery, every request succeeded')
    t.comment(`${seen.length} requests: ${count((a) => a.status === 200)} answered, ${count((a) => a.status === 503)} 503 while PgBouncer was down`)
  })
}
