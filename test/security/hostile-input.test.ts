import t from 'tap'
import { createHmac, generateKeyPairSync } from 'node:crypto'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { createSigner } from 'fast-jwt'
import type { Knex } from 'knex'
import type { Test } from 'tap'
import { openCatalog } from '../../src/catalog/catalog.js'
import { migrateSchools } from '../../src/fleet/migrate-schools.js'
import { TEST_SECRET, testApp, type TestApp } from '../helpers/app.js'
import { withDatabase } from '../helpers/databases.js'

/*
 * The hostile-input list, walked in one place. Every case answers a 4xx with
 * a stable `code`, never a 500 and never a hang (2 s per request), and writes
 * nothing: all lunch data of every school database and the catalog's rows are
 * the same before and after the whole table. docs/security.md, "Hostile
 * input", lists the same table (case → status, code).
 *
 * Then the names in the catalog: its CHECK constraints refuse unsafe slugs and
 * database names, and, with those constraints dropped, the code refuses them
 * again before any SQL is built (migrate and request path alike). Last,
 * `postgres` and `template1` must never be migrated into.
 */

const ANSWER_WITHIN_MS = 2_000
const SQL = "pinewood'; DROP TABLE lunch_week; --"
const EVIL_NAME = 'x"; DROP DATABASE y; --'

const now = (): number => Math.floor(Date.now() / 1000)
const inAnHour = (): number => now() + 3600

/** Signs HS256 with the test secret, exactly the claims given (no exp added). */
const signRaw = createSigner({ key: TEST_SECRET, algorithm: 'HS256' })

const b64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url')

/** A JWT put together by hand: header and payload as given (strings are taken as they are); HS256 over `key`, or no signature. */
function craft (header: unknown, payload: unknown, key: string | null = TEST_SECRET): string {
  const encode = (part: unknown): string => b64url(typeof part === 'string' ? part : JSON.stringify(part))
  const input = `${encode(header)}.${encode(payload)}`
  const signature = key === null ? '' : createHmac('sha256', key).update(input).digest('base64url')
  return `${input}.${signature}`
}

function rsaKeys (): { publicPem: string, privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  }
}

type Headers = Record<string, string | string[]>
const bearer = (token: string): Headers => ({ authorization: `Bearer ${token}` })

interface ErrorBody { statusCode?: unknown, code?: unknown, error?: unknown, message?: unknown }

/** app.inject, or 'timeout' when no answer came within ANSWER_WITHIN_MS. */
async function injectWithin (app: FastifyInstance, request: InjectOptions): Promise<LightMyRequestResponse | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ANSWER_WITHIN_MS) })
  try {
    return await Promise.race([app.inject(request), timeout])
  } finally {
    clearTimeout(timer)
  }
}

function parseBody (res: LightMyRequestResponse): ErrorBody {
  try {
    const body = JSON.parse(res.body) as unknown
    return body !== null && typeof body === 'object' ? body as ErrorBody : {}
  } catch {
    return {}
  }
}

/** Asserts one answered error: within time, the status and code, the error shape, JSON. */
async function expectError (t: Test, app: FastifyInstance, request: InjectOptions, status: number, code: string): Promise<void> {
  const res = await injectWithin(app, request)
  if (res === 'timeout') {
    t.fail(`no answer within ${ANSWER_WITHIN_MS} ms`)
    return
  }
  const body = parseBody(res)
  t.equal(res.statusCode, status, `status ${status}`)
  t.equal(body.code, code, `code ${code}`)
  t.equal(body.statusCode, res.statusCode, 'body.statusCode is the status')
  t.ok(typeof body.error === 'string' && typeof body.message === 'string' && body.message !== '', 'error and message')
  t.match(String(res.headers['content-type']), /^application\/json/, 'a JSON answer')
}

/** Everything the tests could write: catalog rows, lunch rows of every school, and the databases of the namespace. */
async function snapshot (serverUrl: string, admin: Knex, prefixes: string[]): Promise<unknown> {
  const result: Record<string, unknown> = {}
  for (const prefix of prefixes) {
    const schools = await withDatabase(serverUrl, `${prefix}_catalog`, async (db) =>
      await db('schools').select('*').orderBy('id') as Array<{ database_name: string }>)
    const lunch: Record<string, unknown> = {}
    for (const school of schools) {
      lunch[school.database_name] = await withDatabase(serverUrl, school.database_name, async (db) => ({
        lunch_week: await db('lunch_week').select('*').orderBy('id'),
        lunch_day: await db('lunch_day').select('*').orderBy('id')
      }))
    }
    const { rows } = await admin.raw<{ rows: Array<{ datname: string }> }>(
      'SELECT datname FROM pg_database WHERE datname LIKE ? ORDER BY datname', [`${prefix}\\_%`])
    result[prefix] = { schools, lunch, databases: rows.map((r) => r.datname) }
  }
  // Dates and bigints compared by their JSON form.
  return JSON.parse(JSON.stringify(result))
}

const RESERVED = ['postgres', 'template0', 'template1']

/**
 * The databases and login roles a test could create or drop: those of its
 * namespace, PostgreSQL's own, the names given, and anything that looks
 * injected. Other test files work on the same server at the same time, so
 * the whole server is not compared.
 */
async function serverObjects (admin: Knex, prefix: string, names: string[] = []): Promise<{ databases: string[], roles: string[] }> {
  const like = `%${prefix}\\_%`
  const suspicious = (column: string): string => `${column} LIKE '%DROP%' OR position('"' in ${column}) > 0 OR ${column} ~ '[A-Z]'`
  const databases = await admin.raw<{ rows: Array<{ name: string }> }>(
    `SELECT datname AS name FROM pg_database WHERE datname LIKE ? OR datname = ANY(?) OR ${suspicious('datname')} ORDER BY 1`,
    [like, [...RESERVED, ...names]])
  const roles = await admin.raw<{ rows: Array<{ name: string }> }>(
    `SELECT rolname AS name FROM pg_roles WHERE rolname LIKE ? OR rolname = ANY(?) OR (rolname LIKE 'school%' AND (${suspicious('rolname')})) ORDER BY 1`,
    [like, [...RESERVED, ...names].map((n) => `school_${n}`)])
  return { databases: databases.rows.map((r) => r.name), roles: roles.rows.map((r) => r.name) }
}

/** The request, built per line of the table. */
type Req = InjectOptions
type Case = [name: string, status: number, code: string, app: FastifyInstance, request: Req]

t.test('hostile input: 4xx with a stable code, never 500, never a hang, nothing written', async (t) => {
  const rsa = rsaKeys()
  const main: TestApp = await testApp(t, 'hoin', { schools: ['alpha', 'beta'] })
  const rs: TestApp = await testApp(t, 'hoinrs', { schools: ['alpha'], env: { JWT_PUBLIC_KEY: rsa.publicPem } })
  const rsSign = createSigner({ key: rsa.privatePem, algorithm: 'RS256', expiresIn: 3_600_000 })

  // Data the hostile requests would change if they got through: week 1 with
  // days 1–5 in alpha (both apps) and in beta.
  const alpha = main.auth('alpha')
  const rsAlpha = bearer(rsSign({ sub: 'rs-user', school: 'alpha' }))
  for (const [app, headers] of [[main.app, alpha], [main.app, main.auth('beta')], [rs.app, rsAlpha]] as const) {
    const res = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers, payload: { weekOf: '2026-11-23' } })
    t.equal(res.statusCode, 201, 'seed week created')
    t.equal((res.json() as { id: string, days: unknown[] }).id, '1', 'seed week is id 1')
  }
  // The good requests work, so each refusal below is about what was changed.
  t.equal((await main.app.inject({ method: 'GET', url: '/api/lunch-weeks/1', headers: alpha })).statusCode, 200, 'a valid token reads week 1')
  t.equal((await rs.app.inject({ method: 'GET', url: '/api/lunch-weeks/1', headers: rsAlpha })).statusCode, 200, 'a valid RS256 token reads week 1')

  // Requests. A refused token or school is tried on DELETE week 1, which
  // would write if it got through; bodies go with a valid token.
  const del = (headers: Headers): Req => ({ method: 'DELETE', url: '/api/lunch-weeks/1', headers })
  // Two Authorization headers: Node's server (and inject, which mimics it)
  // keeps only the first in request.headers, so only rawHeaders shows the
  // second. A GET, so that a token getting through cannot spoil the snapshot.
  const twice = (first: string, second: string): Req => {
    const headers: Headers = { authorization: [first, second] }
    return { method: 'GET', url: '/api/lunch-weeks/1', headers }
  }
  const claims = (c: Record<string, unknown>, headers: Headers = {}): Req => del({ ...bearer(main.token({ sub: 'u', ...c })), ...headers })
  const xs = (value: string | string[], allowed = ['alpha', 'beta']): Req => claims({ schools: allowed }, { 'x-school': value })
  const id = (method: 'GET' | 'PATCH' | 'DELETE', url: string): Req =>
    method === 'PATCH'
      ? { method, url, headers: alpha, payload: url.includes('/days/') ? { menuDetails: 'hacked' } : { isPublished: true } }
      : { method, url, headers: alpha }
  const body = (method: 'POST' | 'PATCH', url: string, payload: unknown): Req =>
    ({ method, url, headers: { ...alpha, 'content-type': 'application/json' }, payload: JSON.stringify(payload) })
  const rawBody = (method: 'POST' | 'PATCH', url: string, payload: string, contentType = 'application/json'): Req =>
    ({ method, url, headers: { ...alpha, 'content-type': contentType }, payload })
  const post = (payload: unknown): Req => body('POST', '/api/lunch-weeks', payload)
  const patchWeek = (payload: unknown): Req => body('PATCH', '/api/lunch-weeks/1', payload)
  const patchDay = (payload: unknown): Req => body('PATCH', '/api/lunch-weeks/1/days/1', payload)

  const header = { alg: 'HS256', typ: 'JWT' }
  const huge = main.token({ school: 'alpha', padding: 'x'.repeat(300 * 1024) }) // base64url: ~400 KB
  t.ok(huge.length > 380 * 1024 && huge.length < 420 * 1024, `the big token is ${Math.round(huge.length / 1024)} KB`)
  const wrongKey = createSigner({ key: 'another-secret-that-is-long-enough-for-hs256!', algorithm: 'HS256', expiresIn: 3_600_000 })
  const otherPair = rsaKeys()
  const otherRs = createSigner({ key: otherPair.privatePem, algorithm: 'RS256', expiresIn: 3_600_000 })
  const M = main.app
  const R = rs.app
  const over16k = 'x'.repeat(17 * 1024)
  const BIG = '9223372036854775808' // 2^63: 19 digits, one past bigint

  const table: Case[] = [
    // ── the Authorization header and the JWT ─────────────────────────────────────────────────────────────────────
    ['JWT: no Authorization header',                   401, 'TOKEN_MISSING',         M, del({})],
    ['JWT: Basic scheme',                              401, 'TOKEN_MALFORMED',       M, del({ authorization: 'Basic dXNlcjpwYXNz' })],
    ['JWT: Authorization sent twice',                  401, 'TOKEN_MALFORMED',       M, twice(main.auth('beta').authorization, alpha.authorization)],
    ['JWT: alg none, no signature',                    401, 'TOKEN_INVALID',         M, del(bearer(craft({ alg: 'none', typ: 'JWT' }, { school: 'alpha', exp: inAnHour() }, null)))],
    ['JWT: alg none, with a signature',                401, 'TOKEN_INVALID',         M, del(bearer(craft({ alg: 'none', typ: 'JWT' }, { school: 'alpha', exp: inAnHour() })))],
    ['JWT: alg NONE (case games)',                     401, 'TOKEN_INVALID',         M, del(bearer(craft({ alg: 'NONE', typ: 'JWT' }, { school: 'alpha', exp: inAnHour() }, null)))],
    ['JWT: HS256 app, other secret',                   401, 'TOKEN_INVALID',         M, del(bearer(wrongKey({ school: 'alpha' })))],
    ['JWT: HS256 app, payload changed after signing',  401, 'TOKEN_INVALID',         M, del(bearer(main.token({ school: 'beta' }).split('.').map((p, i) => i === 1 ? b64url(JSON.stringify({ school: 'alpha', exp: inAnHour() })) : p).join('.')))],
    ['JWT: HS256 app, RS256 token',                    401, 'TOKEN_INVALID',         M, del(bearer(rsSign({ school: 'alpha' })))],
    ['JWT: expired',                                   401, 'TOKEN_EXPIRED',         M, del(bearer(signRaw({ school: 'alpha', exp: now() - 60 })))],
    ['JWT: nbf in the future',                         401, 'TOKEN_NOT_YET_VALID',   M, del(bearer(signRaw({ school: 'alpha', exp: inAnHour(), nbf: now() + 600 })))],
    ['JWT: ~400 KB token',                             401, 'TOKEN_MALFORMED',       M, del(bearer(huge))],
    ['JWT: payload not JSON',                          401, 'TOKEN_MALFORMED',       M, del(bearer(craft(header, 'this is {not json')))],
    ['JWT: payload a JSON array',                      401, 'TOKEN_MALFORMED',       M, del(bearer(craft(header, '["alpha"]')))],
    ['JWT: payload JSON null',                         401, 'TOKEN_MALFORMED',       M, del(bearer(craft(header, 'null')))],
    ['JWT: header not JSON',                           401, 'TOKEN_MALFORMED',       M, del(bearer(craft('{not json', { school: 'alpha', exp: inAnHour() })))],
    ['JWT: segments not base64url',                    401, 'TOKEN_MALFORMED',       M, del({ authorization: 'Bearer !!!.@@@.###' })],
    ['JWT: RS256 app, HS256 keyed with the public PEM', 401, 'TOKEN_INVALID',        R, del(bearer(craft(header, { school: 'alpha', exp: inAnHour() }, rsa.publicPem)))],
    ['JWT: RS256 app, HS256 with the test secret',     401, 'TOKEN_INVALID',         R, del(bearer(signRaw({ school: 'alpha', exp: inAnHour() })))],
    ['JWT: RS256 app, alg none',                       401, 'TOKEN_INVALID',         R, del(bearer(craft({ alg: 'none', typ: 'JWT' }, { school: 'alpha', exp: inAnHour() }, null)))],
    ['JWT: RS256 app, another key pair',               401, 'TOKEN_INVALID',         R, del(bearer(otherRs({ school: 'alpha' })))],
    // ── the school claim (validly signed) ────────────────────────────────────────────────────────────────────────
    ['claim: school is a number',                      401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: 42 })],
    ['claim: school is an array',                      401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: ['alpha'] })],
    ['claim: school is an object',                     401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: { slug: 'alpha' } })],
    ['claim: school is null',                          401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: null })],
    ['claim: school is true',                          401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: true })],
    ['claim: school is empty',                         401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: '' })],
    ['claim: school is 1000 characters',               401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: 'a'.repeat(1000) })],
    ['claim: school is SQL',                           401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: SQL })],
    ['claim: school is x"; DROP DATABASE',             401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: EVIL_NAME })],
    ['claim: school is unicode (écôle)',               401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: 'écôle' })],
    ['claim: school is an emoji',                      401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: '🍎' })],
    ['claim: school is a slug and an emoji',           401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: 'alpha🍎' })],
    ['claim: school is upper case',                    401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: 'Alpha' })],
    ['claim: school with a NUL byte',                  401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: 'alpha\u0000' })],
    ['claim: school is a path',                        401, 'SCHOOL_CLAIM_INVALID',  M, claims({ school: '../alpha' })],
    ['claim: schools is a string',                     401, 'SCHOOL_CLAIM_INVALID',  M, claims({ schools: 'alpha' })],
    ['claim: schools holds SQL',                       401, 'SCHOOL_CLAIM_INVALID',  M, claims({ schools: ['alpha', SQL] })],
    ['claim: no school at all',                        401, 'SCHOOL_CLAIM_MISSING',  M, claims({})],
    ['claim: beta, X-School alpha',                    403, 'SCHOOL_NOT_ALLOWED',    M, claims({ school: 'beta' }, { 'x-school': 'alpha' })],
    ['claim: schools [beta], X-School alpha',          403, 'SCHOOL_NOT_ALLOWED',    M, claims({ schools: ['beta'] }, { 'x-school': 'alpha' })],
    ['claim: a slug the catalog lacks',                403, 'SCHOOL_UNKNOWN',        M, claims({ school: 'ghost' })],
    // ── X-School ─────────────────────────────────────────────────────────────────────────────────────────────────
    ['X-School: allowed by the token, not in catalog', 403, 'SCHOOL_UNKNOWN',        M, xs('ghost', ['alpha', 'ghost'])],
    ['X-School: SQL',                                  400, 'SCHOOL_HEADER_INVALID', M, xs(SQL)],
    ['X-School: upper case',                           400, 'SCHOOL_HEADER_INVALID', M, xs('ALPHA')],
    ['X-School: empty',                                400, 'SCHOOL_HEADER_INVALID', M, xs('')],
    ['X-School: 64 characters',                        400, 'SCHOOL_HEADER_INVALID', M, xs('a'.repeat(64))],
    ['X-School: two slugs in one value',               400, 'SCHOOL_HEADER_INVALID', M, xs('alpha,beta')],
    ['X-School: repeated (alpha, beta)',               400, 'SCHOOL_HEADER_INVALID', M, xs(['alpha', 'beta'])],
    ['X-School: repeated (alpha, alpha)',              400, 'SCHOOL_HEADER_INVALID', M, xs(['alpha', 'alpha'])],
    ['X-School: several allowed, none chosen',         400, 'SCHOOL_NOT_SELECTED',   M, claims({ schools: ['alpha', 'beta'] })],
    // ── path ids ─────────────────────────────────────────────────────────────────────────────────────────────────
    ['id: GET week abc',                               400, 'INVALID_REQUEST',       M, id('GET', '/api/lunch-weeks/abc')],
    ['id: GET week -1',                                400, 'INVALID_REQUEST',       M, id('GET', '/api/lunch-weeks/-1')],
    ['id: GET week 0',                                 400, 'INVALID_REQUEST',       M, id('GET', '/api/lunch-weeks/0')],
    ['id: GET week 01',                                400, 'INVALID_REQUEST',       M, id('GET', '/api/lunch-weeks/01')],
    ['id: GET week 1e3',                               400, 'INVALID_REQUEST',       M, id('GET', '/api/lunch-weeks/1e3')],
    ['id: GET week "1 OR 1=1"',                        400, 'INVALID_REQUEST',       M, id('GET', '/api/lunch-weeks/1%20OR%201=1')],
    ['id: GET week 2^63',                              400, 'INVALID_ID',            M, id('GET', `/api/lunch-weeks/${BIG}`)],
    ['id: GET week 20 digits',                         400, 'INVALID_REQUEST',       M, id('GET', '/api/lunch-weeks/99999999999999999999')],
    ['id: GET week 2^63-1 (largest bigint)',           404, 'LUNCH_WEEK_NOT_FOUND',  M, id('GET', '/api/lunch-weeks/9223372036854775807')],
    ['id: PATCH week abc',                             400, 'INVALID_REQUEST',       M, id('PATCH', '/api/lunch-weeks/abc')],
    ['id: PATCH week -1',                              400, 'INVALID_REQUEST',       M, id('PATCH', '/api/lunch-weeks/-1')],
    ['id: PATCH week 2^63',                            400, 'INVALID_ID',            M, id('PATCH', `/api/lunch-weeks/${BIG}`)],
    ['id: PATCH week 20 digits',                       400, 'INVALID_REQUEST',       M, id('PATCH', '/api/lunch-weeks/99999999999999999999')],
    ['id: DELETE week abc',                            400, 'INVALID_REQUEST',       M, id('DELETE', '/api/lunch-weeks/abc')],
    ['id: DELETE week -1',                             400, 'INVALID_REQUEST',       M, id('DELETE', '/api/lunch-weeks/-1')],
    ['id: DELETE week 2^63',                           400, 'INVALID_ID',            M, id('DELETE', `/api/lunch-weeks/${BIG}`)],
    ['id: DELETE week 20 digits',                      400, 'INVALID_REQUEST',       M, id('DELETE', '/api/lunch-weeks/99999999999999999999')],
    ['id: PATCH day, week abc',                        400, 'INVALID_REQUEST',       M, id('PATCH', '/api/lunch-weeks/abc/days/1')],
    ['id: PATCH day, day abc',                         400, 'INVALID_REQUEST',       M, id('PATCH', '/api/lunch-weeks/1/days/abc')],
    ['id: PATCH day, week -1',                         400, 'INVALID_REQUEST',       M, id('PATCH', '/api/lunch-weeks/-1/days/1')],
    ['id: PATCH day, day -1',                          400, 'INVALID_REQUEST',       M, id('PATCH', '/api/lunch-weeks/1/days/-1')],
    ['id: PATCH day, week 2^63',                       400, 'INVALID_ID',            M, id('PATCH', `/api/lunch-weeks/${BIG}/days/1`)],
    ['id: PATCH day, day 2^63',                        400, 'INVALID_ID',            M, id('PATCH', `/api/lunch-weeks/1/days/${BIG}`)],
    ['id: PATCH day, day 20 digits',                   400, 'INVALID_REQUEST',       M, id('PATCH', '/api/lunch-weeks/1/days/99999999999999999999')],
    // ── bodies (valid token) ─────────────────────────────────────────────────────────────────────────────────────
    ['POST: weekOf a number',                          400, 'INVALID_REQUEST',       M, post({ weekOf: 20261130 })],
    ['POST: weekOf true',                              400, 'INVALID_REQUEST',       M, post({ weekOf: true })],
    ['POST: weekOf null',                              400, 'INVALID_REQUEST',       M, post({ weekOf: null })],
    ['POST: weekOf an array',                          400, 'INVALID_REQUEST',       M, post({ weekOf: ['2026-11-30'] })],
    ['POST: weekOf an object',                         400, 'INVALID_REQUEST',       M, post({ weekOf: { $gt: '' } })],
    ['POST: no weekOf',                                400, 'INVALID_REQUEST',       M, post({})],
    ['POST: body an array',                            400, 'INVALID_REQUEST',       M, post(['2026-11-30'])],
    ['POST: body a string',                            400, 'INVALID_REQUEST',       M, post('2026-11-30')],
    ['POST: extra property isPublished',               400, 'INVALID_REQUEST',       M, post({ weekOf: '2026-11-30', isPublished: true })],
    ['POST: extra property id',                        400, 'INVALID_REQUEST',       M, post({ weekOf: '2026-11-30', id: 1 })],
    ['POST: date 2026-02-30',                          400, 'INVALID_REQUEST',       M, post({ weekOf: '2026-02-30' })],
    ['POST: date 2026-13-01',                          400, 'INVALID_REQUEST',       M, post({ weekOf: '2026-13-01' })],
    ['POST: date 2026-11-31',                          400, 'INVALID_REQUEST',       M, post({ weekOf: '2026-11-31' })],
    ['POST: date 2027-02-29 (no leap day)',            400, 'INVALID_REQUEST',       M, post({ weekOf: '2027-02-29' })],
    ['POST: date 30/11/2026',                          400, 'INVALID_REQUEST',       M, post({ weekOf: '30/11/2026' })],
    ['POST: date with a time',                         400, 'INVALID_REQUEST',       M, post({ weekOf: '2026-11-30T00:00:00Z' })],
    ['POST: date with SQL',                            400, 'INVALID_REQUEST',       M, post({ weekOf: "2026-11-30'; DROP TABLE lunch_week; --" })],
    ['POST: date empty',                               400, 'INVALID_REQUEST',       M, post({ weekOf: '' })],
    ['POST: a Tuesday',                                400, 'WEEK_NOT_MONDAY',       M, post({ weekOf: '2026-12-01' })],
    ['POST: a Sunday',                                 400, 'WEEK_NOT_MONDAY',       M, post({ weekOf: '2026-11-29' })],
    ['POST: 17 KiB body',                              413, 'BODY_TOO_LARGE',        M, post({ weekOf: '2026-11-30', pad: over16k })],
    ['POST: 400 KiB body',                             413, 'BODY_TOO_LARGE',        M, post({ weekOf: '2026-11-30', pad: 'x'.repeat(400 * 1024) })],
    ['POST: not JSON',                                 400, 'INVALID_JSON',          M, rawBody('POST', '/api/lunch-weeks', '{"weekOf": ')],
    ['POST: __proto__ key',                            400, 'INVALID_JSON',          M, rawBody('POST', '/api/lunch-weeks', '{"weekOf":"2026-11-30","__proto__":{"isAdmin":true}}')],
    ['POST: constructor.prototype key',                400, 'INVALID_JSON',          M, rawBody('POST', '/api/lunch-weeks', '{"weekOf":"2026-11-30","constructor":{"prototype":{"x":1}}}')],
    ['POST: text/plain',                               415, 'UNSUPPORTED_MEDIA_TYPE', M, rawBody('POST', '/api/lunch-weeks', '2026-11-30', 'text/plain')],
    ['POST: form-encoded',                             415, 'UNSUPPORTED_MEDIA_TYPE', M, rawBody('POST', '/api/lunch-weeks', 'weekOf=2026-11-30', 'application/x-www-form-urlencoded')],
    ['PATCH week: isPublished "true"',                 400, 'INVALID_REQUEST',       M, patchWeek({ isPublished: 'true' })],
    ['PATCH week: isPublished 1',                      400, 'INVALID_REQUEST',       M, patchWeek({ isPublished: 1 })],
    ['PATCH week: isPublished null',                   400, 'INVALID_REQUEST',       M, patchWeek({ isPublished: null })],
    ['PATCH week: no isPublished',                     400, 'INVALID_REQUEST',       M, patchWeek({})],
    ['PATCH week: extra property weekOf',              400, 'INVALID_REQUEST',       M, patchWeek({ isPublished: true, weekOf: '2026-12-07' })],
    ['PATCH week: 17 KiB body',                        413, 'BODY_TOO_LARGE',        M, patchWeek({ isPublished: true, pad: over16k })],
    ['PATCH week: not JSON',                           400, 'INVALID_JSON',          M, rawBody('PATCH', '/api/lunch-weeks/1', '{isPublished: true}')],
    ['PATCH day: menuDetails a number',                400, 'INVALID_REQUEST',       M, patchDay({ menuDetails: 42 })],
    ['PATCH day: menuDetails null',                    400, 'INVALID_REQUEST',       M, patchDay({ menuDetails: null })],
    ['PATCH day: menuDetails an array',                400, 'INVALID_REQUEST',       M, patchDay({ menuDetails: ['soup'] })],
    ['PATCH day: no menuDetails',                      400, 'INVALID_REQUEST',       M, patchDay({})],
    ['PATCH day: extra property day',                  400, 'INVALID_REQUEST',       M, patchDay({ menuDetails: 'soup', day: '2026-11-30' })],
    ['PATCH day: extra property lunchWeekId',          400, 'INVALID_REQUEST',       M, patchDay({ menuDetails: 'soup', lunchWeekId: 2 })],
    ['PATCH day: menuDetails 2001 characters',         400, 'INVALID_REQUEST',       M, patchDay({ menuDetails: 'x'.repeat(2001) })],
    ['PATCH day: 17 KiB body',                         413, 'BODY_TOO_LARGE',        M, patchDay({ menuDetails: over16k })],
    ['PATCH day: not JSON',                            400, 'INVALID_JSON',          M, rawBody('PATCH', '/api/lunch-weeks/1/days/1', 'menuDetails=soup', 'application/json')]
  ]

  const prefixes = ['hoin', 'hoinrs']
  const before = await snapshot(main.dbs.serverUrl, main.dbs.admin, prefixes)
  for (const [name, status, code, app, request] of table) {
    await t.test(`${name} → ${status} ${code}`, async (t) => {
      await expectError(t, app, request, status, code)
    })
  }
  const after = await snapshot(main.dbs.serverUrl, main.dbs.admin, prefixes)
  t.same(after, before, 'nothing written: catalog rows, lunch_week and lunch_day of every school, databases')

  // The snapshot does see a write: the same day patched with a valid body.
  const ok = await main.app.inject({ method: 'PATCH', url: '/api/lunch-weeks/1/days/1', headers: alpha, payload: { menuDetails: 'soup' } })
  t.equal(ok.statusCode, 200, 'a valid PATCH passes')
  t.notSame(await snapshot(main.dbs.serverUrl, main.dbs.admin, prefixes), before, 'the snapshot sees a real write')
})

t.test('the catalog constraints refuse unsafe slugs and database names', async (t) => {
  const { dbs } = await testApp(t, 'hocat')
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })

  const rejected: Array<[string, Record<string, string>, string]> = [
    ['SQL in the database name', { slug: 'ok-1', database_name: EVIL_NAME }, 'schools_database_name_format'],
    ['SQL in the slug', { slug: EVIL_NAME, database_name: 'ok_1' }, 'schools_slug_format'],
    ['quote in the database name', { slug: 'ok-2', database_name: 'ok"2' }, 'schools_database_name_format'],
    ['upper case database name', { slug: 'ok-3', database_name: 'OK_3' }, 'schools_database_name_format'],
    ['64-byte database name', { slug: 'ok-4', database_name: 'a'.repeat(64) }, 'schools_database_name_format'],
    ['emoji slug', { slug: '🍎', database_name: 'ok_5' }, 'schools_slug_format'],
    ['database postgres', { slug: 'ok-6', database_name: 'postgres' }, 'schools_database_name_not_reserved'],
    ['database template0', { slug: 'ok-7', database_name: 'template0' }, 'schools_database_name_not_reserved'],
    ['database template1', { slug: 'ok-8', database_name: 'template1' }, 'schools_database_name_not_reserved']
  ]
  for (const [what, values, constraint] of rejected) {
    const error = await catalog('schools').insert({ name: 'A School', ...values })
      .then(() => null, (e: unknown) => e as { code?: string, constraint?: string })
    t.ok(error !== null, `${what}: the insert fails`)
    t.equal(error?.code, '23514', `${what}: check_violation`)
    t.equal(error?.constraint, constraint, `${what}: by ${constraint}`)
  }
  t.same(await catalog('schools').select('slug'), [], 'no row was stored')
})

t.test('with the CHECK constraints dropped, the code still refuses unsafe names before any SQL', async (t) => {
  const { app, dbs, token, auth } = await testApp(t, 'hodrop', { schools: ['alpha'] })
  const victim = dbs.databaseName('victim')
  await dbs.admin.raw(`CREATE DATABASE "${victim}"`)
  const dropVictim = `x"; DROP DATABASE "${victim}"; --`
  const longName = dbs.databaseName('l'.repeat(60)) // 67 bytes: PostgreSQL would cut it to 63
  const evil = [dropVictim, EVIL_NAME, longName, longName.slice(0, 63), dbs.databaseName('UPPER'), 'y']

  const catalog = openCatalog(dbs.catalogUrl, 1)
  try {
    await catalog.raw('ALTER TABLE schools DROP CONSTRAINT schools_database_name_format, DROP CONSTRAINT schools_slug_format')
    await catalog('schools').insert([
      { slug: 'evil-db', name: 'Evil database name', database_name: dropVictim },
      { slug: 'evil-y', name: 'Evil database name', database_name: EVIL_NAME },
      { slug: dropVictim, name: 'Evil slug', database_name: dbs.databaseName('evilslug') },
      { slug: 'long-db', name: 'Too long', database_name: longName },
      { slug: 'upper-db', name: 'Upper case', database_name: dbs.databaseName('UPPER') },
      { slug: 'fresh', name: 'A good one', database_name: dbs.databaseName('fresh') }
    ])
  } finally {
    await catalog.destroy()
  }

  await t.test('(a) migrateSchools refuses them, creates and drops nothing else', async (t) => {
    const before = await serverObjects(dbs.admin, 'hodrop', evil)
    t.ok(before.databases.includes(victim) && before.databases.includes(dbs.databaseName('alpha')), 'the victim and alpha databases exist')
    const report = await migrateSchools(dbs.topology, { concurrency: 2, useTemplate: false })
    const outcome = (slug: string) => report.schools.find((s) => s.slug === slug)
    const refused: Array<[string, string]> = [
      ['evil-db', 'Database name'], ['evil-y', 'Database name'], [dropVictim, 'School slug'], ['long-db', 'Database name'], ['upper-db', 'Database name']
    ]
    for (const [slug, what] of refused) {
      t.match(outcome(slug)?.error, new RegExp(`^${what} .* is not allowed`), `${slug}: "${what} … is not allowed"`)
      t.same(outcome(slug)?.migrations, [], `${slug}: no migration ran`)
    }
    t.equal(outcome('fresh')?.error, null, 'a good school in the same run is migrated')
    t.equal(outcome('fresh')?.database, 'created', 'its database was created')
    t.equal(outcome('alpha')?.error, null, 'the existing school is fine')
    const after = await serverObjects(dbs.admin, 'hodrop', evil)
    t.same(after.databases, [...before.databases, dbs.databaseName('fresh')].sort(),
      'only the good school\'s database was created; none dropped (the victim, alpha, postgres, template0/1 are all there)')
    t.same(after.roles.filter((r) => !before.roles.includes(r)).filter((r) => !r.includes('fresh')), [],
      'no login role was created for a refused school')
  })

  await t.test('(b) a request for a school with a malicious database_name gets a clean error', async (t) => {
    const before = await serverObjects(dbs.admin, 'hodrop', evil)
    const requests: Array<[string, InjectOptions]> = [
      ['GET /api/lunch-weeks', { method: 'GET', url: '/api/lunch-weeks', headers: auth('evil-db') }],
      ['POST /api/lunch-weeks', { method: 'POST', url: '/api/lunch-weeks', headers: auth('evil-db'), payload: { weekOf: '2026-11-23' } }],
      ['GET /api/me, name x"; DROP DATABASE y', { method: 'GET', url: '/api/me', headers: auth('evil-y') }],
      ['public GET', { method: 'GET', url: '/api/public/schools/evil-db/lunch-weeks/2026-11-23' }],
      ['GET, a 67-byte name', { method: 'GET', url: '/api/lunch-weeks', headers: auth('long-db') }]
    ]
    for (const [what, request] of requests) {
      const res = await injectWithin(app, request)
      if (res === 'timeout') { t.fail(`${what}: no answer within ${ANSWER_WITHIN_MS} ms`); continue }
      const body = parseBody(res)
      t.ok(res.statusCode >= 400 && res.statusCode < 600, `${what}: an error status (${res.statusCode})`)
      t.not(res.statusCode, 500, `${what}: not a 500`)
      t.ok(typeof body.code === 'string' && /^[A-Z_]+$/.test(body.code), `${what}: a stable code (${String(body.code)})`)
      t.not(body.code, 'INTERNAL_ERROR', `${what}: not INTERNAL_ERROR`)
      t.match(String(res.headers['content-type']), /^application\/json/, `${what}: a JSON answer`)
      t.notMatch(res.body, /DROP DATABASE/, `${what}: the name is not echoed`)
    }
    // A token cannot even name the malicious slug.
    const slugClaim = await injectWithin(app, { method: 'DELETE', url: '/api/lunch-weeks/1', headers: bearer(token({ school: dropVictim })) })
    t.equal(slugClaim === 'timeout' ? 'timeout' : slugClaim.statusCode, 401, 'malicious slug claim: 401')
    t.equal(slugClaim === 'timeout' ? null : parseBody(slugClaim).code, 'SCHOOL_CLAIM_INVALID', 'malicious slug claim: SCHOOL_CLAIM_INVALID')

    t.equal((await app.inject({ method: 'GET', url: '/api/lunch-weeks', headers: auth('alpha') })).statusCode, 200, 'alpha still answers')
    t.same(await serverObjects(dbs.admin, 'hodrop', evil), before, 'no database or role created or dropped')
  })
})

t.test('postgres, template0 and template1 are never migrated into, even with the catalog constraint dropped', async (t) => {
  const { app, dbs, auth } = await testApp(t, 'horsv')
  const reserved: Array<[string, string]> = [['maint', 'postgres'], ['tmpl0', 'template0'], ['tmpl1', 'template1']]
  const catalog = openCatalog(dbs.catalogUrl, 1)
  try {
    await catalog.raw('ALTER TABLE schools DROP CONSTRAINT IF EXISTS schools_database_name_not_reserved')
    await catalog('schools').insert(reserved.map(([slug, database]) => ({ slug, name: `Reserved ${database}`, database_name: database })))
  } finally {
    await catalog.destroy()
  }

  const APP_TABLES = ['lunch_week', 'lunch_day', 'knex_migrations', 'knex_migrations_lock']
  // template0 takes no connections; its state cannot change through a login either.
  const connectable = ['postgres', 'template1']
  const appTables = async (database: string): Promise<string[]> => await withDatabase(dbs.serverUrl, database, async (db) => {
    const { rows } = await db.raw<{ rows: Array<{ relname: string }> }>(
      "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname = ANY(?) ORDER BY 1",
      [APP_TABLES])
    return rows.map((r) => r.relname)
  })
  const state = async (): Promise<unknown> => {
    const acl = await dbs.admin.raw<{ rows: unknown[] }>('SELECT datname, datacl::text AS acl FROM pg_database WHERE datname = ANY(?) ORDER BY 1', [RESERVED])
    const tables: Record<string, string[]> = {}
    for (const database of connectable) tables[database] = await appTables(database)
    return { acl: acl.rows, tables, objects: await serverObjects(dbs.admin, 'horsv') }
  }
  const before = await state()

  // A request for such a school is refused cleanly.
  for (const [slug] of reserved) {
    const res = await injectWithin(app, { method: 'GET', url: '/api/lunch-weeks', headers: auth(slug) })
    if (res === 'timeout') { t.fail(`${slug}: no answer within ${ANSWER_WITHIN_MS} ms`); continue }
    const code = parseBody(res).code
    t.ok(res.statusCode >= 400 && res.statusCode !== 500 && code !== 'INTERNAL_ERROR', `${slug}: refused (${res.statusCode} ${String(code)})`)
  }

  let report: Awaited<ReturnType<typeof migrateSchools>> | null = null
  let added: Record<string, string[]> = {}
  try {
    report = await migrateSchools(dbs.topology, { concurrency: 1, only: reserved.map(([slug]) => slug) })
  } finally {
    // Undo at once whatever migrate put there: tables in template1 would be
    // copied into every database created afterwards on this server.
    const beforeTables = (before as { tables: Record<string, string[]> }).tables
    for (const database of connectable) {
      const extra = (await appTables(database)).filter((table) => !(beforeTables[database] ?? []).includes(table))
      added = { ...added, [database]: extra }
      if (extra.length > 0) {
        await withDatabase(dbs.serverUrl, database, async (db) => {
          for (const table of APP_TABLES) if (extra.includes(table)) await db.raw(`DROP TABLE IF EXISTS "${table}" CASCADE`)
        })
      }
    }
  }
  t.same(added, { postgres: [], template1: [] }, 'migrate created no table in postgres or template1')
  for (const [slug, database] of reserved) {
    const outcome = report?.schools.find((s) => s.slug === slug)
    t.match(outcome?.error, /reserved|not allowed/, `${database}: migrate refuses it (${String(outcome?.error)})`)
    t.same(outcome?.migrations, [], `${database}: no migration applied`)
  }
  t.same(await state(), before, 'no grant, table, database or role changed')
})
