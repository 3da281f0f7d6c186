import t from 'tap'
import { helmetHeaders } from '../../src/security-headers.js'
import { testApp } from '../helpers/app.js'

t.test('a noisy school runs out of its own budget only', async (t) => {
  const { app, auth } = await testApp(t, 'limrate', { schools: ['noisy', 'quiet'], env: { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' } })
  const noisy = []
  for (let i = 0; i < 7; i++) noisy.push(await app.inject({ url: '/api/lunch-weeks', headers: auth('noisy') }))
  t.same(noisy.map((r) => r.statusCode), [200, 200, 200, 200, 200, 429, 429])
  const limited = noisy[5]!
  t.match(limited.json(), { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests' })
  t.ok(Number(limited.headers['retry-after']) > 0, 'says when to retry')
  t.equal(limited.headers['x-ratelimit-limit'], '5')

  const quiet = await app.inject({ url: '/api/lunch-weeks', headers: auth('quiet') })
  t.equal(quiet.statusCode, 200, 'another school is not affected')
  // The budget follows the school, not the token.
  const multi = await app.inject({ url: '/api/me', headers: { ...auth('quiet', { schools: ['noisy', 'quiet'] }), 'x-school': 'noisy' } })
  t.equal(multi.statusCode, 429, 'switching token does not reset the school\'s budget')
})

t.test('rate limiting is off by default outside production', async (t) => {
  const { app, auth } = await testApp(t, 'limoff', { schools: ['free'] })
  const statuses = []
  for (let i = 0; i < 30; i++) statuses.push((await app.inject({ url: '/api/lunch-weeks', headers: auth('free') })).statusCode)
  t.same(new Set(statuses), new Set([200]))
  t.equal((await app.inject({ url: '/api/lunch-weeks', headers: auth('free') })).headers['x-ratelimit-limit'], undefined)
})

t.test('security headers for a JSON API', async (t) => {
  const { app, auth } = await testApp(t, 'limhead', { schools: ['alpha'] })
  const res = await app.inject({ url: '/api/lunch-weeks', headers: auth('alpha') })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'")
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['referrer-policy'], 'no-referrer')
  t.ok(res.headers['x-frame-options'] !== undefined, 'framing is refused for old browsers too')
  t.equal(res.headers['cache-control'], 'no-store', 'staff data is never cached')
  t.equal(res.headers['x-powered-by'], undefined)

  const failed = await app.inject({ url: '/api/lunch-weeks' })
  t.equal(failed.statusCode, 401)
  t.equal(failed.headers['x-content-type-options'], 'nosniff', 'errors carry them too')

  const created = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: auth('alpha'), payload: { weekOf: '2026-11-23' } })
  const week = created.json() as { id: string }
  await app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${week.id}`, headers: auth('alpha'), payload: { isPublished: true } })
  const pub = await app.inject({ url: '/api/public/schools/alpha/lunch-weeks/2026-11-23' })
  t.equal(pub.statusCode, 200)
  t.equal(pub.headers['cache-control'], 'public, max-age=60', 'public menus stay cacheable')

  const missing = await app.inject({ url: '/no/such/route' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'", 'a 404 carries them too')
})

t.test('the headers, worked out once, are the ones helmet sets', async (t) => {
  const headers = helmetHeaders({ referrerPolicy: { policy: 'no-referrer' } })
  t.equal(headers['referrer-policy'], 'no-referrer')
  t.equal(headers['x-content-type-options'], 'nosniff')
  t.equal(headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', "helmet's default HSTS")
  t.match(headers['content-security-policy'], /default-src 'self'/, "helmet's default CSP when none is given")
  t.notOk('x-powered-by' in headers, 'helmet removes X-Powered-By; it is never set')
  t.same(helmetHeaders({ xFrameOptions: false, contentSecurityPolicy: false })['x-frame-options'], undefined, 'a header turned off is left out')
})
