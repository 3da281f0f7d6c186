import { randomUUID } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { testApp, type TestApp } from '../helpers/app.js'
import { generateSigningKey, hs256Token, startJwksServer, tokenSigner, type JwksServer, type SigningKey } from '../helpers/jwks-server.js'

/*
 * Tokens signed by keys from a key set (JWKS), as Auth0 issues them, served
 * by a real HTTP server on loopback: acceptance, rotation, removal, a flood
 * of unknown kids, the endpoint down, slow or answering garbage, and tokens
 * that try to bring their own key.
 */

const ISSUER = 'https://school-lunch.eu.auth0.com/'
const AUDIENCE = 'https://api.school-lunch.example'
const CLAIM = 'https://school-lunch.example/school'
const COOLDOWN_MS = 30_000
const MAX_AGE_MS = 600_000

const current = generateSigningKey('2026-current')
const next = generateSigningKey('2026-next')
const attacker = generateSigningKey('attacker')

interface Setup extends TestApp {
  jwks: JwksServer
  advance: (ms: number) => void
  /** GET /api/me with this token: status, code and Retry-After. */
  me: (token: string) => Promise<{ status: number, code?: string, school?: string, retryAfter?: string }>
}

async function setup (t: Test, prefix: string, served: SigningKey[], env: Record<string, string> = {}): Promise<Setup> {
  const jwks = await startJwksServer(served)
  t.teardown(jwks.close)
  let now = Date.now()
  const app = await testApp(t, prefix, {
    schools: ['alpha'],
    env: {
      JWT_JWKS_URL: jwks.url,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      JWT_SCHOOL_CLAIM: CLAIM,
      ...env
    },
    clock: () => now
  })
  // The first fetch starts when the app is ready; let it finish.
  await app.app.tokens.keys?.refresh()
  const me = async (token: string): ReturnType<Setup['me']> => {
    const res = await app.app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${token}` } })
    const body = res.json<{ code?: string, school?: { slug: string } }>()
    return {
      status: res.statusCode,
      ...(body.code === undefined ? {} : { code: body.code }),
      ...(body.school === undefined ? {} : { school: body.school.slug }),
      ...(res.headers['retry-after'] === undefined ? {} : { retryAfter: String(res.headers['retry-after']) })
    }
  }
  return { ...app, jwks, advance: (ms) => { now += ms }, me }
}

const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ iss: ISSUER, aud: [AUDIENCE, `${ISSUER}userinfo`], sub: 'auth0|teacher-1', [CLAIM]: 'alpha', ...extra })

t.test('RS256 tokens from the key set: accepted, rotated, removed', async (t) => {
  const { jwks, advance, me, app } = await setup(t, 'jwksrot', [current])
  t.equal(jwks.fetches, 1, 'fetched once at start')

  const signCurrent = tokenSigner(current)
  t.same(await me(signCurrent(claims())), { status: 200, school: 'alpha' }, 'a token signed by the current key is served')

  // Auth0 publishes the next key, then signs with it.
  jwks.keys = [current, next]
  advance(COOLDOWN_MS)
  const signNext = tokenSigner(next)
  t.same(await me(signNext(claims())), { status: 200, school: 'alpha' }, 'the new kid is fetched and served, no restart')
  t.equal(jwks.fetches, 2, 'with one refetch')

  // The old key goes away; a token it signed was verified (and cached) above.
  const oldToken = signCurrent(claims({ sub: 'auth0|teacher-2' }))
  t.equal((await me(oldToken)).status, 200, 'the old key still works while the set is fresh')
  jwks.keys = [next]
  advance(MAX_AGE_MS)
  t.match(await me(oldToken), { status: 401, code: 'TOKEN_INVALID' }, 'once the cache expired, the old key is refused, even for a token verified before')
  t.match(await me(signCurrent(claims())), { status: 401, code: 'TOKEN_INVALID' }, 'and for new tokens')
  t.same(await me(signNext(claims())), { status: 200, school: 'alpha' }, 'the current key goes on')
  t.equal(app.tokens.keys?.stats().keys, 1)
})

t.test('the verified-token cache works with a key set', async (t) => {
  const { me, app, jwks } = await setup(t, 'jwkscache', [current, next])
  const token = tokenSigner(current)(claims())
  for (let i = 0; i < 20; i++) t.equal((await me(token)).status, 200)
  t.equal(app.tokens.verify.cachedTokens(), 1, '20 requests with one token: one entry in fast-jwt\'s cache')
  t.equal((await me(tokenSigner(next)(claims()))).status, 200)
  t.equal((await me(tokenSigner(current)(claims({ sub: 'another' })))).status, 200)
  t.equal(app.tokens.verify.cachedTokens(), 3, 'each new token is remembered once, whichever key signed it')
  t.equal(jwks.fetches, 1, 'and no key was fetched for them')
  t.equal(app.tokens.keys?.stats().lookups, 0, 'nor looked up the slow way: the kids were in the fresh set')
})

t.test('a flood of random kids: every token refused, at most one fetch per cooldown', async (t) => {
  const { jwks, advance, me } = await setup(t, 'jwksflood', [current])
  const flood = async (n: number): Promise<Set<string>> => {
    // Signed first, so the requests arrive together.
    const tokens = Array.from({ length: n }, () => tokenSigner(attacker, { header: { kid: randomUUID() } })(claims()))
    const answers = await Promise.all(tokens.map(me))
    return new Set(answers.map((a) => `${a.status} ${a.code ?? ''}`))
  }
  t.same(await flood(500), new Set(['401 TOKEN_INVALID']), '500 concurrent tokens with random kids: all 401')
  t.equal(jwks.fetches, 1, 'no fetch beyond the start-up one (inside its cooldown)')
  advance(COOLDOWN_MS)
  t.same(await flood(500), new Set(['401 TOKEN_INVALID']))
  t.equal(jwks.fetches, 2, 'one cooldown later, 500 more: exactly one fetch')
  t.equal((await me(tokenSigner(current)(claims()))).status, 200, 'real tokens are served throughout')
})

t.test('the endpoint down, slow or answering garbage', async (t) => {
  for (const mode of ['reset', 'error', 'slow', 'garbage'] as const) {
    await t.test(mode, async (t) => {
      // A short timeout keeps the slow case short; the others fail at once.
      const { jwks, advance, me } = await setup(t, `jwks${mode}`, [current], { JWT_JWKS_TIMEOUT_MS: '1000' })
      const signCurrent = tokenSigner(current)
      const cachedToken = signCurrent(claims())
      t.equal((await me(cachedToken)).status, 200)
      jwks.mode = mode
      jwks.keys = [current, next]

      t.equal((await me(cachedToken)).status, 200, 'a token verified before still works')
      t.equal((await me(signCurrent(claims({ sub: 'new' })))).status, 200, 'a new token signed by a cached key works')
      advance(MAX_AGE_MS)
      t.equal((await me(signCurrent(claims({ sub: 'after expiry' })))).status, 200, 'and still does once the set is past its age')
      const fetchesAfterRefresh = jwks.fetches
      t.equal(fetchesAfterRefresh, 2, 'after one failed refresh')

      const answer = await me(tokenSigner(next)(claims()))
      t.same(answer, { status: 503, code: 'AUTH_KEYS_UNAVAILABLE', retryAfter: '30' }, 'an unknown kid: 503 with Retry-After, never 401 or 500')
      advance(COOLDOWN_MS)
      const again = await me(tokenSigner(next)(claims({ sub: 'retry' })))
      t.same(again, { status: 503, code: 'AUTH_KEYS_UNAVAILABLE', retryAfter: '30' }, 'after the cooldown, one more try, still 503')
      t.equal(jwks.fetches, fetchesAfterRefresh + 1)
      if (mode === 'slow') {
        await jwks.wasAbandoned(2)
        t.equal(jwks.abandoned, 2, 'the 503s came before the endpoint answered: the fetches timed out')
      }

      jwks.mode = 'ok'
      advance(COOLDOWN_MS)
      t.same(await me(tokenSigner(next)(claims())), { status: 200, school: 'alpha' }, 'served again once the endpoint is back')
    })
  }
})

t.test('tokens that bring their own key, or name another issuer', async (t) => {
  const { jwks, me, advance } = await setup(t, 'jwksforge', [current])
  const evil = await startJwksServer([attacker])
  t.teardown(evil.close)
  advance(COOLDOWN_MS)
  const publicPem = current.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const attackerDer = attacker.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')

  const forged: Array<[string, string]> = [
    ['jku pointing at the attacker\'s key set', tokenSigner(attacker, { header: { jku: evil.url } })(claims())],
    ['jku, with the kid of a real key', tokenSigner(attacker, { header: { jku: evil.url, kid: current.kid } })(claims())],
    ['x5u pointing at the attacker', tokenSigner(attacker, { header: { x5u: evil.url } })(claims())],
    ['the attacker\'s key embedded as jwk', tokenSigner(attacker, { header: { jwk: attacker.jwk, kid: current.kid } })(claims())],
    ['the attacker\'s key embedded as x5c', tokenSigner(attacker, { header: { x5c: [attackerDer], kid: current.kid } })(claims())],
    ['iss naming the attacker\'s server', tokenSigner(attacker)(claims({ iss: evil.url.replace('.well-known/jwks.json', '') }))],
    ['a real key, another issuer', tokenSigner(current)(claims({ iss: 'https://someone-else.auth0.com/' }))],
    ['a real key, another API\'s audience', tokenSigner(current)(claims({ aud: 'https://other-api.example' }))],
    ['a real key, no audience', tokenSigner(current)(claims({ aud: undefined }))],
    ['HS256 signed with the public key (PEM)', hs256Token(publicPem, { kid: current.kid }, claims())],
    ['HS256 signed with the public key (JWK)', hs256Token(JSON.stringify(current.jwk), { kid: current.kid }, claims())],
    ['HS256 signed with the modulus', hs256Token(String(current.jwk.n), { kid: current.kid }, claims())],
    ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', kid: current.kid })).toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.`]
  ]
  for (const [what, token] of forged) {
    t.match(await me(token), { status: 401, code: 'TOKEN_INVALID' }, what)
  }
  t.equal(evil.fetches, 0, 'the attacker\'s server was never contacted')
  t.equal(jwks.fetches, 2, 'and our key set was fetched once more at most (the attacker\'s kid was unknown)')
  t.equal((await me(tokenSigner(current)(claims()))).status, 200, 'the real key still works')
})

t.test('ES256 only when configured; RSA under 2048 bits never', async (t) => {
  const ec = generateSigningKey('ec-1', 'ES256')
  const weak = generateSigningKey('weak-1', 'RS256', { modulusLength: 1024 })
  const rsOnly = await setup(t, 'jwksrs', [current, ec, weak])
  t.match(await rsOnly.me(tokenSigner(ec)(claims())), { status: 401, code: 'TOKEN_INVALID' }, 'ES256 by default: refused')
  t.match(await rsOnly.me(tokenSigner(weak)(claims())), { status: 401, code: 'TOKEN_INVALID' }, 'a 1024-bit RSA key: refused')
  t.equal((await rsOnly.me(tokenSigner(current)(claims()))).status, 200)

  const withEs = await setup(t, 'jwkses', [current, ec], { JWT_JWKS_ALGORITHMS: 'RS256,ES256' })
  t.same(await withEs.me(tokenSigner(ec)(claims())), { status: 200, school: 'alpha' }, 'ES256 configured: served')
  t.equal((await withEs.me(tokenSigner(current)(claims()))).status, 200, 'RS256 still')
})

t.test('a key set that cannot be reached at start: the app starts; tokens get a fast 503', async (t) => {
  const closed = http.createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => { resolve() }))

  const now = Date.now()
  const { app, logs } = await testApp(t, 'jwksdown', {
    schools: ['alpha'],
    env: { JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`, JWT_AUDIENCE: AUDIENCE, JWT_SCHOOL_CLAIM: CLAIM },
    clock: () => now
  })
  await app.tokens.keys?.refresh()
  t.match(logs.filter((line) => Number(line.level) >= 40), [{ level: 50, msg: /key set: fetch failed, could not connect/ }], 'the failure is logged')
  t.equal((await app.inject('/health')).statusCode, 200, '/health answers')
  t.equal((await app.inject('/ready')).statusCode, 200, '/ready is about the catalog only')
  const res = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${tokenSigner(current)(claims())}` } })
  t.equal(res.statusCode, 503)
  t.equal(res.json<{ code: string }>().code, 'AUTH_KEYS_UNAVAILABLE')
  t.equal(res.headers['retry-after'], '30', 'the cooldown that followed the failed fetch, whole')
})
