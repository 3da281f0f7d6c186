import t from 'tap'
import { testApp } from '../helpers/app.js'
import { startJwksServer, generateSigningKey, tokenSigner } from '../helpers/jwks-server.js'

/*
 * What @fastify/jwt brings (request.user, app.jwt) and what is kept beside
 * it: the key set's own verifiers, whose verified tokens go with their key.
 */

const AUDIENCE = 'https://api.school-lunch.example'

t.test('a secret: app.jwt signs what the API accepts, and verifies it', async (t) => {
  const { app } = await testApp(t, 'jwtplug', { schools: ['alpha'], env: { JWT_ISSUER: 'https://issuer.example/', JWT_AUDIENCE: AUDIENCE } })
  t.ok(app.hasRequestDecorator('user') && app.hasRequestDecorator('jwtVerify'), 'request.user and request.jwtVerify are there')
  const token = app.jwt.sign({ sub: 'cook', school: 'alpha' })
  t.match(app.jwt.verify(token), { sub: 'cook', school: 'alpha', iss: 'https://issuer.example/', aud: AUDIENCE }, 'signed with the configured issuer and audience')
  const me = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })
  t.equal(me.statusCode, 200, me.body)
  t.same(me.json(), { subject: 'cook', school: { slug: 'alpha', name: 'School alpha' }, schools: ['alpha'] })
})

t.test('a key set: app.jwt does not sign', async (t) => {
  const key = generateSigningKey('only')
  const jwks = await startJwksServer([key])
  t.teardown(jwks.close)
  const { app } = await testApp(t, 'jwtplugks', { schools: ['alpha'], env: { JWT_JWKS_URL: jwks.url, JWT_AUDIENCE: AUDIENCE } })
  t.throws(() => app.jwt.sign({ school: 'alpha' }), /verify mode/, 'the API holds no private key')
})

t.test('a key removed from the set takes the tokens verified with it out of memory', async (t) => {
  const current = generateSigningKey('2026-current')
  const next = generateSigningKey('2026-next')
  const jwks = await startJwksServer([current, next])
  t.teardown(jwks.close)
  let now = Date.now()
  const { app } = await testApp(t, 'jwtplugrm', { schools: ['alpha'], env: { JWT_JWKS_URL: jwks.url, JWT_AUDIENCE: AUDIENCE }, clock: () => now })
  await app.tokens.keys?.refresh()
  const me = async (token: string): Promise<number> =>
    (await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })).statusCode
  const claims = { sub: 'teacher', school: 'alpha', aud: AUDIENCE }

  const old = tokenSigner(current)(claims)
  t.equal(await me(old), 200)
  t.equal(await me(tokenSigner(next)(claims)), 200)
  t.equal(app.tokens.verify.cachedTokens(), 2, 'one token verified with each key')

  jwks.keys = [next]
  now += 600_000
  t.equal(await me(old), 401, 'once the set is refreshed, the removed key\'s token is refused')
  t.equal(app.tokens.verify.cachedTokens(), 1, 'and no longer held: only the token of the key that stays')
})
