import t from 'tap'
import { createHmac, generateKeyPairSync } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import { migrateSchools } from '../../src/fleet/migrate-schools.js'
import { appMigrations } from '../../src/postgres/migrations.js'
import { TEST_SECRET, testApp } from '../helpers/app.js'
import { assertError } from '../helpers/assertions.js'
import { sleep, waitFor } from '../helpers/timing.js'
import { withDatabase } from '../helpers/databases.js'

/*
 * Who may call the API, and for which school: the token, the school claim,
 * X-School, the catalog, the school's database, CORS, logs and metrics.
 * Every refusal is checked by status code and stable `code`.
 */

const now = (): number => Math.floor(Date.now() / 1000)

/** Signs HS256 with the test secret, exactly the claims given (no exp added). */
const signRaw = createSigner({ key: TEST_SECRET, algorithm: 'HS256' })
const inAnHour = (): number => now() + 3600

function b64url (value: string | Buffer): string {
  return Buffer.from(value).toString('base64url')
}

/** A JWT put together by hand: header and payload as given (objects are JSON-encoded). */
function craft (header: unknown, payload: unknown, key: string | null = TEST_SECRET): string {
  const encode = (part: unknown): string => b64url(typeof part === 'string' ? part : JSON.stringify(part))
  const input = `${encode(header)}.${encode(payload)}`
  const signature = key === null ? '' : createHmac('sha256', key).update(input).digest('base64url')
  return `${input}.${signature}`
}

const bearer = (token: string): { authorization: string } => ({ authorization: `Bearer ${token}` })

function rsaKeys (): { publicPem: string, privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  }
}

function metricValue (text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  if (match?.[1] === undefined) throw new Error(`metric ${name} not found in:\n${text}`)
  return Number(match[1])
}

t.test('401: the Authorization header and the token', async (t) => {
  const { app, token } = await testApp(t, 'autok', { schools: ['alpha'] })
  const get = async (headers: Record<string, string>) => await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers })

  // The good token works, so each refusal below is about what was changed.
  const ok = await get(bearer(token({ school: 'alpha' })))
  t.equal(ok.statusCode, 200, 'a valid token is accepted')
  t.same(ok.json(), [])

  assertError(t, await get({}), 401, 'TOKEN_MISSING', 'no Authorization')
  assertError(t, await get({ authorization: 'Basic dXNlcjpwYXNz' }), 401, 'TOKEN_MALFORMED', 'Basic scheme')
  assertError(t, await get({ authorization: 'Bearer' }), 401, 'TOKEN_MALFORMED', 'Bearer and nothing')
  assertError(t, await get({ authorization: 'Bearer ' }), 401, 'TOKEN_MALFORMED', 'Bearer and a space')
  assertError(t, await get({ authorization: 'Bearer abc.def' }), 401, 'TOKEN_MALFORMED', 'garbage token')
  assertError(t, await get({ authorization: 'Bearer !!!.@@@.###' }), 401, 'TOKEN_MALFORMED', 'segments that are not base64url')

  assertError(t, await get(bearer(signRaw({ school: 'alpha', exp: now() - 60 }))), 401, 'TOKEN_EXPIRED', 'exp in the past')
  assertError(t, await get(bearer(signRaw({ school: 'alpha', exp: inAnHour(), nbf: now() + 600 }))), 401, 'TOKEN_NOT_YET_VALID', 'nbf in the future')

  // Verified tokens are cached by their text; the cache must not outlive exp.
  const shortLived = bearer(signRaw({ school: 'alpha', exp: now() + 2 }))
  t.equal((await get(shortLived)).statusCode, 200, 'accepted, and now cached')
  t.equal((await get(shortLived)).statusCode, 200, 'accepted again from the cache')
  // fast-jwt reads the real clock: the token has to actually expire.
  await sleep(Math.max(0, (now() + 2) * 1000 - Date.now()) + 1_100)
  assertError(t, await get(shortLived), 401, 'TOKEN_EXPIRED', 'the same text, once exp has passed')

  const otherSecret = createSigner({ key: 'another-secret-that-is-long-enough-for-hs256!', algorithm: 'HS256', expiresIn: 3_600_000 })
  assertError(t, await get(bearer(otherSecret({ school: 'alpha' }))), 401, 'TOKEN_INVALID', 'signed with another secret')

  const tampered = token({ school: 'alpha' }).split('.')
  tampered[1] = b64url(JSON.stringify({ school: 'alpha', exp: inAnHour(), admin: true }))
  assertError(t, await get(bearer(tampered.join('.'))), 401, 'TOKEN_INVALID', 'payload changed after signing')

  const none = craft({ alg: 'none', typ: 'JWT' }, { school: 'alpha', exp: inAnHour() }, null)
  t.match(none, /\.$/, 'the alg none token has an empty signature')
  assertError(t, await get(bearer(none)), 401, 'TOKEN_INVALID', 'alg none')
  const noneSigned = craft({ alg: 'none', typ: 'JWT' }, { school: 'alpha', exp: inAnHour() })
  assertError(t, await get(bearer(noneSigned)), 401, 'TOKEN_INVALID', 'alg none with a signature')

  const { privatePem } = rsaKeys()
  const rs = createSigner({ key: privatePem, algorithm: 'RS256', expiresIn: 3_600_000 })
  assertError(t, await get(bearer(rs({ school: 'alpha' }))), 401, 'TOKEN_INVALID', 'RS256 token on an HS256 app')

  const huge = token({ school: 'alpha', padding: 'x'.repeat(300 * 1024) })
  t.ok(huge.length > 300 * 1024, 'the token is over 300 KB')
  assertError(t, await get(bearer(huge)), 401, 'TOKEN_MALFORMED', '300 KB token')

  const header = { alg: 'HS256', typ: 'JWT' }
  assertError(t, await get(bearer(craft(header, 'this is {not json'))), 401, ['TOKEN_MALFORMED', 'TOKEN_INVALID'], 'payload not JSON')
  assertError(t, await get(bearer(craft(header, '"a string"'))), 401, ['TOKEN_MALFORMED', 'TOKEN_INVALID'], 'payload a JSON string')
  assertError(t, await get(bearer(craft(header, '["alpha"]'))), 401, ['TOKEN_MALFORMED', 'TOKEN_INVALID'], 'payload a JSON array')
  assertError(t, await get(bearer(craft(header, 'null'))), 401, ['TOKEN_MALFORMED', 'TOKEN_INVALID'], 'payload JSON null')
  assertError(t, await get(bearer(craft('not json either', { school: 'alpha', exp: inAnHour() }))), 401, ['TOKEN_MALFORMED', 'TOKEN_INVALID'], 'header not JSON')

  // The token's own verification cache must not turn a refusal into a pass.
  assertError(t, await get(bearer(none)), 401, 'TOKEN_INVALID', 'alg none, asked again')
})

t.test('401: the school claim', async (t) => {
  const { app, token } = await testApp(t, 'auclaim', { schools: ['alpha'] })
  const me = async (claims: Record<string, unknown>) => await app.inject({ method: 'GET', url: '/api/me', headers: bearer(token(claims)) })

  const ok = await me({ sub: 'u1', school: 'alpha' })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { subject: 'u1', school: { slug: 'alpha', name: 'School alpha' }, schools: ['alpha'] })

  assertError(t, await me({ sub: 'u1' }), 401, 'SCHOOL_CLAIM_MISSING', 'no school claim')
  assertError(t, await me({ sub: 'u1', schools: [] }), 401, 'SCHOOL_CLAIM_MISSING', 'an empty schools list')

  const invalid: Array<[string, unknown]> = [
    ['a number', 42],
    ['an array', ['alpha']],
    ['an object', { slug: 'alpha' }],
    ['null', null],
    ['empty', ''],
    ['64 characters', 'a'.repeat(64)],
    ['SQL', "x'; DROP TABLE schools; --"],
    ['unicode', 'école'],
    ['upper case', 'Alpha'],
    ['a path', '../alpha']
  ]
  for (const [what, school] of invalid) {
    assertError(t, await me({ sub: 'u1', school }), 401, 'SCHOOL_CLAIM_INVALID', `school claim ${what}`)
  }
  assertError(t, await me({ schools: 'alpha' }), 401, 'SCHOOL_CLAIM_INVALID', 'schools claim a string')
  assertError(t, await me({ schools: ['alpha', 'Not A Slug'] }), 401, 'SCHOOL_CLAIM_INVALID', 'schools claim with a bad slug')

  const sixtyThree = 'a'.repeat(63)
  assertError(t, await me({ school: sixtyThree }), 403, 'SCHOOL_UNKNOWN', '63 characters is a slug, just not a known one')
  t.equal((await me({ school: 'alpha' })).statusCode, 200, 'the catalog survived the SQL-looking claim')
})

t.test('JWT_ISSUER and JWT_AUDIENCE are enforced when set', async (t) => {
  const iss = 'https://auth.example.com/'
  const aud = 'school-lunch-api'
  const { app } = await testApp(t, 'auiss', { schools: ['alpha'], env: { JWT_ISSUER: iss, JWT_AUDIENCE: aud } })
  const get = async (claims: Record<string, unknown>) =>
    await app.inject({ method: 'GET', url: '/api/me', headers: bearer(signRaw({ school: 'alpha', exp: inAnHour(), ...claims })) })

  const ok = await get({ iss, aud })
  t.equal(ok.statusCode, 200, 'right issuer and audience')
  t.equal((ok.json() as { school: { slug: string } }).school.slug, 'alpha')
  t.equal((await get({ iss, aud: ['other-api', aud] })).statusCode, 200, 'audience list containing ours')

  assertError(t, await get({ iss: 'https://evil.example.com/', aud }), 401, 'TOKEN_INVALID', 'wrong issuer')
  assertError(t, await get({ iss, aud: 'other-api' }), 401, 'TOKEN_INVALID', 'wrong audience')
  assertError(t, await get({ iss: 42, aud }), 401, 'TOKEN_INVALID', 'issuer not a string')
})

t.test('a token lacking iss or aud is refused when JWT_ISSUER and JWT_AUDIENCE are set', async (t) => {
  const iss = 'https://auth.example.com/'
  const aud = 'school-lunch-api'
  const { app } = await testApp(t, 'auissreq', { schools: ['alpha'], env: { JWT_ISSUER: iss, JWT_AUDIENCE: aud } })
  const get = async (claims: Record<string, unknown>) =>
    await app.inject({ method: 'GET', url: '/api/me', headers: bearer(signRaw({ school: 'alpha', exp: inAnHour(), ...claims })) })

  t.equal((await get({ iss, aud })).statusCode, 200, 'right issuer and audience')
  assertError(t, await get({ aud }), 401, 'TOKEN_INVALID', 'no issuer')
  assertError(t, await get({ iss }), 401, 'TOKEN_INVALID', 'no audience')
  assertError(t, await get({}), 401, 'TOKEN_INVALID', 'neither')
})

t.test('RS256 with a namespaced school claim; HS/RS confusion is refused', async (t) => {
  const { publicPem, privatePem } = rsaKeys()
  const claim = 'https://schools.example.com/school'
  const { app } = await testApp(t, 'aurs', {
    schools: ['alpha', 'beta'],
    env: { JWT_PUBLIC_KEY: publicPem, JWT_SCHOOL_CLAIM: claim }
  })
  const rs = createSigner({ key: privatePem, algorithm: 'RS256', expiresIn: 3_600_000 })
  const me = async (token: string) => await app.inject({ method: 'GET', url: '/api/me', headers: bearer(token) })

  const ok = await me(rs({ sub: 'staff-7', [claim]: 'beta' }))
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { subject: 'staff-7', school: { slug: 'beta', name: 'School beta' }, schools: ['beta'] })

  assertError(t, await me(rs({ sub: 'staff-7', school: 'beta' })), 401, 'SCHOOL_CLAIM_MISSING', 'the plain claim is not the configured one')
  assertError(t, await me(rs({ [claim]: 'Beta!' })), 401, 'SCHOOL_CLAIM_INVALID', 'namespaced claim not a slug')

  // HMAC keyed with the public key text: the classic algorithm confusion.
  const confused = craft({ alg: 'HS256', typ: 'JWT' }, { [claim]: 'alpha', exp: inAnHour() }, publicPem)
  assertError(t, await me(confused), 401, 'TOKEN_INVALID', 'HS256 keyed with the public key')
  const confusedSigner = createSigner({ key: publicPem, algorithm: 'HS256', expiresIn: 3_600_000 })
  assertError(t, await me(confusedSigner({ [claim]: 'alpha' })), 401, 'TOKEN_INVALID', 'HS256 keyed with the public key (fast-jwt signer)')
  assertError(t, await me(signRaw({ [claim]: 'alpha', exp: inAnHour() })), 401, 'TOKEN_INVALID', 'HS256 with the development secret')

  const other = rsaKeys()
  const foreign = createSigner({ key: other.privatePem, algorithm: 'RS256', expiresIn: 3_600_000 })
  assertError(t, await me(foreign({ [claim]: 'alpha' })), 401, 'TOKEN_INVALID', 'RS256 from another key pair')
})

t.test('403: unknown and suspended schools', async (t) => {
  const { app, auth, setStatus } = await testApp(t, 'aususp', { schools: ['alpha', 'beta'], env: { CATALOG_CACHE_TTL_MS: '0' } })
  const get = async (slug: string) => await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: auth(slug) })

  assertError(t, await get('nowhere'), 403, 'SCHOOL_UNKNOWN', 'school not in the catalog')
  t.equal((await get('alpha')).statusCode, 200)
  await setStatus('alpha', 'suspended')
  const suspended = assertError(t, await get('alpha'), 403, 'SCHOOL_SUSPENDED', 'suspended, TTL 0')
  t.match(suspended.message, /alpha/)
  t.equal((await get('beta')).statusCode, 200, 'another school is not affected')
  await setStatus('alpha', 'active')
  t.equal((await get('alpha')).statusCode, 200, 'reactivated at once')
})

t.test('suspension takes effect within the catalog cache TTL', async (t) => {
  t.test('default TTL (30 s): the catalog\'s change notification refuses it well before the TTL', async (t) => {
    const { app, auth, setStatus } = await testApp(t, 'aususdef', { schools: ['alpha'] })
    const get = async () => await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: auth('alpha') })
    t.equal((await get()).statusCode, 200)
    await app.tenancy.listening
    await setStatus('alpha', 'suspended')
    await t.resolves(waitFor('the suspension', 10_000, async () => (await get()).statusCode === 403), 'refused well before the TTL')
    assertError(t, await get(), 403, 'SCHOOL_SUSPENDED', 'suspended, 30 s TTL')
  })

  t.test('TTL 300 ms: refused once the entry expired', async (t) => {
    const { app, auth, setStatus } = await testApp(t, 'aususttl', { schools: ['alpha'], env: { CATALOG_CACHE_TTL_MS: '300' } })
    const get = async () => await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: auth('alpha') })
    t.equal((await get()).statusCode, 200)
    await setStatus('alpha', 'suspended')
    await t.resolves(waitFor('the entry to expire', 5_000, async () => (await get()).statusCode === 403), 'refused once the entry expired')
    assertError(t, await get(), 403, 'SCHOOL_SUSPENDED', 'after the TTL')
  })
})

t.test('choosing the school with X-School', async (t) => {
  const { app, token } = await testApp(t, 'ausel', { schools: ['alpha', 'beta'], unmigrated: ['gamma'] })
  const both = token({ sub: 'teacher', schools: ['alpha', 'beta'] })
  const me = async (tok: string, headers: Record<string, string | string[]> = {}) =>
    await app.inject({ method: 'GET', url: '/api/me', headers: { ...bearer(tok), ...headers } })

  assertError(t, await me(both), 400, 'SCHOOL_NOT_SELECTED', 'several schools, no header')

  const beta = await me(both, { 'x-school': 'beta' })
  t.equal(beta.statusCode, 200)
  t.same(beta.json(), { subject: 'teacher', school: { slug: 'beta', name: 'School beta' }, schools: ['alpha', 'beta'] })
  const alpha = await me(both, { 'x-school': 'alpha' })
  t.equal((alpha.json() as { school: { slug: string } }).school.slug, 'alpha', 'switching is per request')

  const weeks = await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: { ...bearer(both), 'x-school': 'beta' } })
  t.equal(weeks.statusCode, 200, 'X-School works on the lunch routes too')

  assertError(t, await me(both, { 'x-school': 'gamma' }), 403, 'SCHOOL_NOT_ALLOWED', 'a catalog school the token does not allow')
  assertError(t, await me(both, { 'x-school': 'Not A Slug' }), 400, 'SCHOOL_HEADER_INVALID', 'malformed header')
  assertError(t, await me(both, { 'x-school': '' }), 400, 'SCHOOL_HEADER_INVALID', 'empty header')
  assertError(t, await me(both, { 'x-school': ['alpha', 'beta'] }), 400, 'SCHOOL_HEADER_INVALID', 'header sent twice')

  const single = await me(token({ sub: 'cook', schools: ['beta'] }))
  t.equal(single.statusCode, 200)
  t.same(single.json(), { subject: 'cook', school: { slug: 'beta', name: 'School beta' }, schools: ['beta'] }, 'the only allowed school')

  const withClaim = token({ sub: 'head', school: 'alpha' })
  assertError(t, await me(withClaim, { 'x-school': 'beta' }), 403, 'SCHOOL_NOT_ALLOWED', 'a single-school token cannot switch')
  t.equal((await me(withClaim, { 'x-school': 'alpha' })).statusCode, 200, 'naming its own school is fine')

  const mixed = token({ sub: 'head', school: 'alpha', schools: ['beta'] })
  const mixedDefault = await me(mixed)
  t.same(mixedDefault.json(), { subject: 'head', school: { slug: 'alpha', name: 'School alpha' }, schools: ['alpha', 'beta'] },
    'the school claim is the default, the list adds choices')
  t.equal(((await me(mixed, { 'x-school': 'beta' })).json() as { school: { slug: string } }).school.slug, 'beta')
})

t.test('503 with Retry-After while a school database is missing or unmigrated; others unaffected', async (t) => {
  // No outage window: once migrated, the next request tries the database again.
  const { app, auth, dbs } = await testApp(t, 'audb', { schools: ['alpha', 'gone'], unmigrated: ['ghost', 'bare'], tenancy: { unavailableForMs: 0 } })
  await dbs.admin.raw(`CREATE DATABASE ${dbs.databaseName('bare')}`)
  // Set up once, then its database went away.
  await dbs.admin.raw(`DROP DATABASE ${dbs.databaseName('gone')} WITH (FORCE)`)
  const get = async (slug: string) => await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: auth(slug) })

  const started = Date.now()
  const ghost = await get('ghost')
  const elapsed = Date.now() - started
  assertError(t, ghost, 503, 'SCHOOL_NOT_MIGRATED', 'never set up by migrate: no database, no role')
  t.equal(ghost.headers['retry-after'], '5', 'Retry-After')
  t.ok(elapsed < 2000, `answered in ${elapsed} ms (< 2 s)`)

  t.equal((await get('alpha')).statusCode, 200, 'healthy school between failures')

  assertError(t, await get('gone'), 503, 'SCHOOL_DATABASE_MISSING', 'set up, then its database was dropped')

  const bare = await get('bare')
  assertError(t, bare, 503, 'SCHOOL_NOT_MIGRATED', 'database without tables')
  t.equal(bare.headers['retry-after'], '5', 'Retry-After')

  // Interleaved and concurrent: the failing schools never hold up alpha.
  for (let i = 0; i < 3; i++) {
    const [g, a, b] = await Promise.all([get('ghost'), get('alpha'), get('bare')])
    assertError(t, g, 503, 'SCHOOL_NOT_MIGRATED', `round ${i}: ghost`)
    t.equal(a.statusCode, 200, `round ${i}: alpha answers`)
    assertError(t, b, 503, 'SCHOOL_NOT_MIGRATED', `round ${i}: bare`)
  }

  const report = await migrateSchools(dbs.topology, { concurrency: 2 })
  t.same(report.schools.filter((s) => s.error !== null), [], 'migration succeeded')

  t.equal((await get('ghost')).statusCode, 200, 'the formerly missing school answers without a restart')
  t.equal((await get('bare')).statusCode, 200, 'the formerly unmigrated school answers without a restart')
  t.equal((await get('alpha')).statusCode, 200)
})

t.test('a database behind the latest migration, or without migration records, is a 503 SCHOOL_NOT_MIGRATED', async (t) => {
  const { app, auth, dbs } = await testApp(t, 'aubehind', { schools: ['behind', 'notable', 'current'] })
  const latest = (await appMigrations.names()).at(-1)
  await withDatabase(dbs.serverUrl, dbs.databaseName('behind'), async (db) => { await db('knex_migrations').where({ name: latest }).del() })
  await withDatabase(dbs.serverUrl, dbs.databaseName('notable'), async (db) => { await db.schema.dropTable('knex_migrations') })
  const get = async (slug: string) => await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: auth(slug) })
  assertError(t, await get('behind'), 503, 'SCHOOL_NOT_MIGRATED', 'the latest migration is not recorded')
  assertError(t, await get('notable'), 503, 'SCHOOL_NOT_MIGRATED', 'no knex_migrations table at all')
  t.equal((await get('current')).statusCode, 200, 'a current school is served')
})

t.test('CORS for the allowed origin only', async (t) => {
  const { app, auth } = await testApp(t, 'aucors', { schools: ['alpha'], env: { CORS_ORIGINS: 'https://app.example.com' } })
  const preflight = async (url: string, method: string, origin: string) => await app.inject({
    method: 'OPTIONS',
    url,
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'authorization,x-school,content-type'
    }
  })
  const allowHeaders = (res: { headers: Record<string, unknown> }): string[] =>
    String(res.headers['access-control-allow-headers'] ?? '').toLowerCase().split(',').map((h) => h.trim())

  const post = await preflight('/api/lunch-weeks', 'POST', 'https://app.example.com')
  t.equal(post.statusCode, 204)
  t.equal(post.headers['access-control-allow-origin'], 'https://app.example.com')
  t.ok(allowHeaders(post).includes('authorization'), 'Authorization allowed')
  t.ok(allowHeaders(post).includes('x-school'), 'X-School allowed')
  t.ok(allowHeaders(post).includes('content-type'), 'Content-Type allowed')
  t.match(String(post.headers['access-control-allow-methods']), /POST/)

  const patch = await preflight('/api/lunch-weeks/1/days/2', 'PATCH', 'https://app.example.com')
  t.equal(patch.statusCode, 204)
  t.equal(patch.headers['access-control-allow-origin'], 'https://app.example.com')
  t.match(String(patch.headers['access-control-allow-methods']), /PATCH/)
  t.ok(allowHeaders(patch).includes('x-school'))

  const evil = await preflight('/api/lunch-weeks', 'POST', 'https://evil.example.com')
  t.notOk('access-control-allow-origin' in evil.headers, 'no allow-origin for another origin')
  t.not(evil.statusCode, 500)

  const get = await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: { ...auth('alpha'), origin: 'https://app.example.com' } })
  t.equal(get.statusCode, 200)
  t.equal(get.headers['access-control-allow-origin'], 'https://app.example.com')
  const refused = await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: { origin: 'https://app.example.com' } })
  assertError(t, refused, 401, 'TOKEN_MISSING', 'no token from the allowed origin')
  t.equal(refused.headers['access-control-allow-origin'], 'https://app.example.com', 'the browser can read the 401')
  const evilGet = await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: { ...auth('alpha'), origin: 'https://evil.example.com' } })
  t.notOk('access-control-allow-origin' in evilGet.headers, 'no allow-origin on a GET from another origin')
})

t.test('without CORS_ORIGINS no origin is allowed', async (t) => {
  const { app, auth } = await testApp(t, 'aunocors', { schools: ['alpha'] })
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/api/lunch-weeks',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' }
  })
  t.ok(preflight.statusCode >= 400 && preflight.statusCode < 500, `preflight refused (${preflight.statusCode})`)
  t.notOk('access-control-allow-origin' in preflight.headers)
  const get = await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: { ...auth('alpha'), origin: 'https://app.example.com' } })
  t.equal(get.statusCode, 200, 'same-origin and server-side callers are served as before')
  t.notOk('access-control-allow-origin' in get.headers, 'a browser on another origin cannot read it')
})

t.test('logs name the school and never the token or database credentials', async (t) => {
  const { app, auth, logs, token } = await testApp(t, 'aulog', { schools: ['alpha'], unmigrated: ['ghost'] })
  const alphaAuth = auth('alpha')
  const res = await app.inject({ method: 'GET', url: '/api/lunch-weeks?secret=1', headers: alphaAuth })
  t.equal(res.statusCode, 200)
  const line = logs.find((l) => l.msg === 'request' && l.path === '/api/lunch-weeks' && l.statusCode === 200)
  t.ok(line, 'a request line was logged')
  t.equal(line?.school, 'alpha', 'the request line names the school')
  t.equal(line?.method, 'GET')

  const refusedToken = token({ school: 'nowhere' })
  assertError(t, await app.inject({ method: 'GET', url: '/api/me', headers: bearer(refusedToken) }), 403, 'SCHOOL_UNKNOWN', 'unknown school')
  const expired = signRaw({ school: 'alpha', exp: now() - 10 })
  assertError(t, await app.inject({ method: 'GET', url: '/api/me', headers: bearer(expired) }), 401, 'TOKEN_EXPIRED', 'expired')
  const ghostAuth = auth('ghost')
  assertError(t, await app.inject({ method: 'GET', url: '/api/me', headers: ghostAuth }), 503, 'SCHOOL_NOT_MIGRATED', 'school not set up')
  t.ok(logs.some((l) => l.msg === 'request failed'), 'the 503 was logged as a failure')
  const failedLine = logs.find((l) => l.msg === 'request' && l.statusCode === 401)
  t.ok(failedLine, 'refused requests are logged too')
  t.notOk(failedLine !== undefined && 'school' in failedLine, 'a refused request names no school')

  const all = JSON.stringify(logs)
  for (const secret of [alphaAuth.authorization.slice('Bearer '.length), refusedToken, expired, ghostAuth.authorization.slice('Bearer '.length)]) {
    t.notOk(all.includes(secret), 'no token in the logs')
    t.notOk(all.includes(secret.split('.')[2] ?? '<none>'), 'not even a token signature')
  }
  t.notOk(all.includes('postgres://'), 'no connection URL in the logs')
  t.notOk(all.includes('postgres@'), 'no database password in the logs')
})

t.test('GET /metrics reports pools and the catalog cache, and the numbers move', async (t) => {
  const { app, auth } = await testApp(t, 'aumet', { schools: ['alpha', 'beta'] })
  const metrics = async (): Promise<string> => {
    const res = await app.inject({ method: 'GET', url: '/metrics' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/plain/)
    return res.body
  }
  const get = async (slug: string) => await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: auth(slug) })

  const before = await metrics()
  for (const name of ['tenant_pools_open', 'tenant_pool_hits_total', 'tenant_pool_misses_total', 'catalog_cache_misses_total',
    'catalog_cache_hits_total', 'catalog_cache_entries', 'tenant_connections_in_use', 'tenant_connections_idle']) {
    t.match(before, new RegExp(`^# TYPE ${name} (gauge|counter)$`, 'm'), `${name} is declared`)
    t.ok(Number.isFinite(metricValue(before, name)), `${name} has a number`)
  }
  t.equal(metricValue(before, 'tenant_pools_open'), 0)

  t.equal((await get('alpha')).statusCode, 200)
  const afterFirst = await metrics()
  t.equal(metricValue(afterFirst, 'tenant_pools_open'), 1, 'one pool open')
  t.equal(metricValue(afterFirst, 'tenant_pool_misses_total'), metricValue(before, 'tenant_pool_misses_total') + 1, 'first request opened the pool')
  t.equal(metricValue(afterFirst, 'tenant_connections_opened_total'), metricValue(before, 'tenant_connections_opened_total') + 1, 'and one connection')
  t.equal(metricValue(afterFirst, 'catalog_cache_misses_total'), metricValue(before, 'catalog_cache_misses_total') + 1, 'first lookup asked the catalog')

  t.equal((await get('alpha')).statusCode, 200)
  t.equal((await get('alpha')).statusCode, 200)
  const afterHits = await metrics()
  t.equal(metricValue(afterHits, 'tenant_pool_hits_total'), metricValue(afterFirst, 'tenant_pool_hits_total') + 2, 'pool hits increase')
  t.equal(metricValue(afterHits, 'catalog_cache_hits_total'), metricValue(afterFirst, 'catalog_cache_hits_total') + 2, 'cache hits increase')
  t.equal(metricValue(afterHits, 'catalog_cache_misses_total'), metricValue(afterFirst, 'catalog_cache_misses_total'), 'no more catalog queries')
  t.equal(metricValue(afterHits, 'tenant_connections_opened_total'), metricValue(afterFirst, 'tenant_connections_opened_total'), 'hits reuse the connection')

  t.equal((await get('beta')).statusCode, 200)
  const afterBeta = await metrics()
  t.equal(metricValue(afterBeta, 'tenant_pools_open'), 2, 'a pool per school')
  t.equal(metricValue(afterBeta, 'catalog_cache_entries'), 2)
  t.equal(metricValue(afterBeta, 'tenant_connections_in_use'), 0, 'connections are returned after the request')
})
