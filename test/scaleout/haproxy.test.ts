// Three real API processes behind Debian's HAProxy 2.6, run from
// deploy/haproxy.cfg: each school goes to one process, by the X-School
// header, the Host's first label, or the token's (namespaced) school claim;
// a suspension reaches every process; a process stopped under load loses
// no request.
import t from 'tap'
import { Agent, request } from 'node:http'
import { createSigner } from 'fast-jwt'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { DEVELOPMENT_JWT_SECRET } from '../../src/config.js'
import { hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { testDatabases } from '../helpers/databases.js'
import { startServerProcess, type ServerProcess } from '../helpers/run.js'
import { scaleoutToolsReady, startHaProxy } from '../helpers/scaleout.js'
import { waitFor } from '../helpers/timing.js'

// An Auth0-style namespaced claim: HAProxy reads it with its dots escaped.
const SCHOOL_CLAIM = 'https://lunch.test/school'
const SCHOOLS_CLAIM = 'https://lunch.test/schools'
const HOST_SUFFIX = '.lunch.test'
const SLUGS = Array.from({ length: 12 }, (_, i) => `hs${String(i + 1).padStart(2, '0')}`)
// Well inside the default 30 s cache TTL: only the catalog's notification explains a change seen sooner.
const BEFORE_THE_TTL_MS = 10_000

const sign = createSigner({ key: DEVELOPMENT_JWT_SECRET, algorithm: 'HS256', expiresIn: 3_600_000 })
const bearer = (claims: Record<string, unknown>): string => `Bearer ${sign({ sub: 'staff', ...claims })}`
const own = (slug: string): string => bearer({ [SCHOOL_CLAIM]: slug })
const all = bearer({ [SCHOOLS_CLAIM]: SLUGS })

interface Routed { school: string, server: string, status: number, retries: number, path: string }

/** HAProxy's request lines (deploy/haproxy.cfg's log-format), parsed. */
function routed (output: string): Routed[] {
  return [...output.matchAll(/^\S+ (\S+) (\S+) school=(\S*) server=(\S+) status=(\d+) retries=\+?(\d+)/gm)]
    .map((m) => ({ path: m[2] as string, school: m[3] as string, server: m[4] as string, status: Number(m[5]), retries: Number(m[6]) }))
}

/** The schools whose requests one API process answered, from its request log lines. */
function schoolsServedBy (server: ServerProcess): Set<string> {
  const schools = new Set<string>()
  for (const line of server.output().split('\n')) {
    if (!line.startsWith('{')) continue
    const entry = JSON.parse(line) as { msg?: string, school?: string }
    if (entry.msg === 'request' && entry.school !== undefined) schools.add(entry.school)
  }
  return schools
}

if (scaleoutToolsReady(t)) {
  const dbs = await testDatabases(t, 'hapx')
  await prepareCatalog(dbs.catalogUrl)
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })
  await catalog('schools').insert(SLUGS.map((slug) => ({ slug, name: `School ${slug}`, database_name: dbs.databaseName(slug) })))
  const report = await migrateSchools(dbs.topology, { concurrency: 4 })
  if (hasFailures(report)) throw new Error(JSON.stringify(report.schools.filter((s) => s.error !== null)))

  const agent = new Agent({ keepAlive: true })
  t.teardown(() => { agent.destroy() })
  const env = { ...dbs.env, JWT_SCHOOL_CLAIM: SCHOOL_CLAIM, JWT_SCHOOLS_CLAIM: SCHOOLS_CLAIM }
  const processes = await Promise.all([0, 1, 2].map(async () => await startServerProcess(env)))
  t.teardown(() => { for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL') })
  const hostPort = (p: ServerProcess): string => p.address.replace('http://', '')
  const haproxy = await startHaProxy(t, {
    apis: [hostPort(processes[0] as ServerProcess), hostPort(processes[1] as ServerProcess), hostPort(processes[2] as ServerProcess)],
    schoolClaimPath: SCHOOL_CLAIM.replaceAll('.', '\\.'),
    hostSuffix: HOST_SUFFIX
  })
  /** A GET through HAProxy; node:http, since fetch() will not send a Host of the caller's. */
  const get = async (path: string, headers: Record<string, string> = {}): Promise<number> => await new Promise((resolve, reject) => {
    request(`${haproxy.address}${path}`, { headers, agent }, (res) => {
      res.resume()
      res.once('end', () => { resolve(res.statusCode ?? 0) })
    }).once('error', reject).end()
  })
  /** HAProxy writes a request's line once it is done: wait for as many as were sent. */
  const routedOnce = async (path: string, count: number): Promise<Routed[]> => {
    await waitFor(`${count} log lines for ${path}`, 5_000, () => routed(haproxy.output()).filter((r) => r.path === path).length >= count)
    return routed(haproxy.output()).filter((r) => r.path === path)
  }

  t.test('each school reaches one process, whichever way it is named; no school goes round-robin', async (t) => {
    const statuses: number[] = []
    for (const slug of SLUGS) {
      for (let i = 0; i < 3; i++) {
        statuses.push(await get('/api/lunch-weeks', { authorization: own(slug) }))
        statuses.push(await get('/api/lunch-weeks', { authorization: all, 'x-school': slug }))
        // fetch() will not set Host; HAProxy reads the header the client sent.
        statuses.push(await get('/api/lunch-weeks', { authorization: own(slug), host: `${slug}${HOST_SUFFIX}` }))
      }
    }
    t.same([...new Set(statuses)], [200], `${statuses.length} requests, all answered`)
    const lines = await routedOnce('/api/lunch-weeks', statuses.length)
    t.equal(lines.length, statuses.length, 'HAProxy logged each of them')
    for (const slug of SLUGS) {
      const servers = new Set(lines.filter((r) => r.school === slug).map((r) => r.server))
      t.equal(servers.size, 1, `${slug}: its 9 requests went to one process (${[...servers].join(', ')})`)
    }
    const perProcess = processes.map(schoolsServedBy)
    t.same(perProcess.flatMap((s) => [...s]).sort(), SLUGS, 'each school was served by exactly one process, by their own logs')
    t.ok(perProcess.filter((s) => s.size > 0).length >= 2, `the schools are spread over the processes (${perProcess.map((s) => s.size).join(', ')})`)

    // Without a school, round-robin.
    for (let i = 0; i < 9; i++) statuses.push(await get('/health'))
    const anonymous = await routedOnce('/health', 9)
    t.same(anonymous.map((r) => r.school), Array(9).fill('-'), 'no school was found for /health (HAProxy logs an empty value as -)')
    t.equal(new Set(anonymous.map((r) => r.server)).size, 3, 'so it went round-robin, to all three')
  })

  t.test('the X-School header comes first, then the Host, then the token\'s claim', async (t) => {
    await get('/api/me', { authorization: own('hs01'), 'x-school': 'hs02', host: `hs03${HOST_SUFFIX}` })
    await get('/api/me', { authorization: own('hs01'), host: `hs03${HOST_SUFFIX}` })
    await get('/api/me', { authorization: own('hs01'), host: 'api.example.org' })
    await get('/api/me', { authorization: own('hs01'), 'x-route-school': 'hs04' })
    t.same((await routedOnce('/api/me', 4)).map((r) => r.school), ['hs02', 'hs03', 'hs01', 'hs01'],
      'routed by the header, the subdomain, the claim; a client cannot set the routing header itself')
  })

  t.test('a suspension reaches all three processes before the cache TTL', async (t) => {
    const askEach = async (status: number): Promise<number[]> => await Promise.all(processes.map(async (p) =>
      await waitFor(`${p.address} to answer ${status}`, BEFORE_THE_TTL_MS, async () => {
        const res = await fetch(`${p.address}/api/lunch-weeks`, { headers: { authorization: own('hs05') } })
        await res.arrayBuffer()
        return res.status === status
      }, 5)))
    await askEach(200)
    const suspended = Date.now()
    await catalog('schools').where({ slug: 'hs05' }).update({ status: 'suspended' })
    const seen = await askEach(403)
    t.pass(`all three processes refuse hs05, the last ${Date.now() - suspended} ms after the catalog changed (each: ${seen.join(', ')} ms)`)
    await catalog('schools').where({ slug: 'hs05' }).update({ status: 'active' })
    await askEach(200)
  })

  t.test('one process stopped under load: no request lost, and its schools move to the others', async (t) => {
    const stopped = processes[1] as ServerProcess
    const answers: Array<{ slug: string, status: number, error?: string }> = []
    const stopLoad = new AbortController()
    const load = Promise.all(Array.from({ length: 8 }, async (_, worker) => {
      for (let i = 0; !stopLoad.signal.aborted; i++) {
        const slug = SLUGS[(worker * 5 + i) % SLUGS.length] as string
        answers.push({ slug, ...await get('/api/lunch-weeks', { authorization: own(slug) }).then((status) => ({ status }), (error: Error) => ({ status: 0, error: error.message })) })
      }
    }))
    await waitFor('load to flow', 10_000, () => answers.length > 200)
    const before = answers.length
    stopped.child.kill('SIGTERM')
    t.equal(await stopped.exited, 0, 'the stopped process exits 0')
    const after = answers.length
    await waitFor('every school to be served after the stop', 20_000, () => SLUGS.every((slug) => answers.slice(after).some((a) => a.slug === slug && a.status === 200)))
    await waitFor('more load after the stop', 20_000, () => answers.length > after + 300)
    stopLoad.abort()
    await load
    t.same(answers.filter((a) => a.status !== 200), [], `${answers.length} requests (${after - before} during the stop), every one answered 200`)
    const stoppedName = `api${processes.indexOf(stopped) + 1}`
    const late = routed(haproxy.output()).slice(-100)
    t.notOk(late.some((r) => r.server === stoppedName), `the last requests avoided ${stoppedName}`)
    t.comment(`HAProxy retried ${routed(haproxy.output()).filter((r) => r.retries > 0).length} request(s) on another process`)
  })
}
