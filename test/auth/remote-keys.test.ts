import { randomUUID } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import t, { type Test } from 'tap'
import { freePort } from '../../scripts/deploy/daemons.js'
import { createRemoteKeys, type RemoteKeys } from '../../src/auth/remote-keys.js'
import type { JwksAlgorithm } from '../../src/config.js'
import { generateSigningKey, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks-server.js'

const COOLDOWN_MS = 30_000
const MAX_AGE_MS = 600_000

const keyA = generateSigningKey('key-a')
const keyB = generateSigningKey('key-b')

interface Setup {
  server: JwksServer
  keys: RemoteKeys
  logs: Array<{ level: string, msg: string, data: Record<string, unknown> }>
  removed: string[][]
  /** Moves the key set's clock on. */
  advance: (ms: number) => void
}

async function setup (t: Test, served: SigningKey[], { algorithms = ['RS256'] as JwksAlgorithm[], url = '', timeoutMs = 5_000 } = {}): Promise<Setup> {
  const server = await startJwksServer(served)
  t.teardown(server.close)
  let now = 1_000_000
  const logs: Setup['logs'] = []
  const removed: string[][] = []
  const keys = createRemoteKeys({
    url: url === '' ? server.url : url,
    algorithms,
    cooldownMs: COOLDOWN_MS,
    cacheMaxAgeMs: MAX_AGE_MS,
    timeoutMs,
    log: recordingLogger(logs),
    onKeysRemoved: (kids) => { removed.push(kids) },
    now: () => now
  })
  t.teardown(keys.close)
  return { server, keys, logs, removed, advance: (ms) => { now += ms } }
}

function recordingLogger (logs: Setup['logs']): FastifyBaseLogger {
  const at = (level: string) => (data: Record<string, unknown>, msg: string) => { logs.push({ level, msg, data }) }
  return { info: at('info'), warn: at('warn'), error: at('error') } as unknown as FastifyBaseLogger
}

/** The error keyFor throws, as { code, retryAfterSeconds }. */
async function refusal (keys: RemoteKeys, header: Record<string, unknown>): Promise<{ code?: string, message?: string, retryAfterSeconds?: number }> {
  try {
    await keys.keyFor(header)
  } catch (error) {
    return error as { code?: string }
  }
  throw new Error(`keyFor(${JSON.stringify(header)}) returned a key`)
}

const pemOf = (key: SigningKey): string => key.publicKey.export({ type: 'spki', format: 'pem' }).toString()

t.test('a key is found by its kid and given as PEM; one fetch serves many lookups', async (t) => {
  const { server, keys } = await setup(t, [keyA, keyB])
  t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-a' }), pemOf(keyA))
  t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-b' }), pemOf(keyB))
  for (let i = 0; i < 20; i++) await keys.keyFor({ alg: 'RS256', kid: 'key-a' })
  t.equal(server.fetches, 1, 'fetched once')
  t.match(keys.stats(), { fetches: 1, failures: 0, keys: 2 })
})

t.test('rotation: an unknown kid refetches once the cooldown allows, without a restart', async (t) => {
  const { server, keys, advance } = await setup(t, [keyA])
  await keys.refresh()
  server.keys = [keyA, keyB]
  // The set fetched a moment ago lacked key-b: refused, and no fetch yet.
  t.match(await refusal(keys, { alg: 'RS256', kid: 'key-b' }), { code: 'TOKEN_INVALID', message: /holds no RS256 key with this kid/ })
  t.equal(server.fetches, 1, 'no refetch inside the cooldown')
  advance(COOLDOWN_MS)
  t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-b' }), pemOf(keyB), 'the new key is fetched and used')
  t.equal(server.fetches, 2, 'one refetch')
})

t.test('a removed key stops being accepted once the cache expires', async (t) => {
  const { server, keys, removed, advance } = await setup(t, [keyA, keyB])
  await keys.refresh()
  server.keys = [keyB]
  advance(MAX_AGE_MS - 1)
  t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-a' }), pemOf(keyA), 'still cached just before expiry')
  t.equal(server.fetches, 1)
  advance(1)
  t.match(await refusal(keys, { alg: 'RS256', kid: 'key-a' }), { code: 'TOKEN_INVALID' }, 'refused once the cache expired')
  t.equal(server.fetches, 2, 'the expired set was fetched again')
  t.same(removed, [['key-a']], 'the removal is reported, so verified tokens can be forgotten')
  t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-b' }), pemOf(keyB))
})

t.test('a flood of random kids costs at most one fetch per cooldown', async (t) => {
  const { server, keys, advance } = await setup(t, [keyA])
  const flood = async (n: number): Promise<string[]> => await Promise.all(
    Array.from({ length: n }, async () => (await refusal(keys, { alg: 'RS256', kid: randomUUID() })).code ?? ''))

  const first = await flood(1_000)
  t.equal(server.fetches, 1, '1,000 concurrent unknown kids on an empty cache: one fetch, shared')
  t.same([...new Set(first)], ['TOKEN_INVALID'], 'each one refused as unknown, since the set was fetched')
  await flood(1_000)
  t.equal(server.fetches, 1, 'another 1,000 inside the cooldown: no fetch')
  advance(COOLDOWN_MS / 2)
  await flood(1_000)
  t.equal(server.fetches, 1, 'half a cooldown later: still none')
  advance(COOLDOWN_MS / 2)
  await flood(1_000)
  t.equal(server.fetches, 2, 'a full cooldown later: exactly one more')
  // Ten cooldowns of steady flooding, a request every 300 ms of clock time.
  for (let i = 0; i < 1_000; i++) {
    advance(300)
    await refusal(keys, { alg: 'RS256', kid: randomUUID() })
  }
  t.equal(server.fetches, 12, '300 s of flood: 10 more fetches, one per 30 s')
  t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-a' }), pemOf(keyA), 'the real key still works')
})

t.test('endpoint down: cached keys keep working, unknown kids get AUTH_KEYS_UNAVAILABLE', async (t) => {
  for (const mode of ['error', 'reset', 'garbage', 'not-a-set', 'redirect'] as const) {
    await t.test(mode, async (t) => {
      const { server, keys, logs, advance } = await setup(t, [keyA])
      await keys.refresh()
      server.mode = mode
      const other = await startJwksServer([keyB])
      t.teardown(other.close)
      server.redirectTo = other.url

      advance(MAX_AGE_MS)
      t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-a' }), pemOf(keyA), 'past its age, the cached key still works')
      t.equal(server.fetches, 2, 'after one refresh attempt')
      t.match(logs.at(-1), { level: 'error', msg: /fetch failed/ }, 'the failure is logged')

      const unavailable = await refusal(keys, { alg: 'RS256', kid: 'key-b' })
      t.match(unavailable, { code: 'AUTH_KEYS_UNAVAILABLE', retryAfterSeconds: 30 }, 'not a 401: the set could not be read')
      t.equal(server.fetches, 2, 'and no fetch inside the cooldown')
      advance(COOLDOWN_MS - 10_000)
      t.match(await refusal(keys, { alg: 'RS256', kid: 'key-b' }), { retryAfterSeconds: 10 }, 'Retry-After counts down to the next allowed fetch')
      t.equal(other.fetches, 0, 'a redirect is never followed')

      server.mode = 'ok'
      server.keys = [keyA, keyB]
      advance(10_000)
      t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-b' }), pemOf(keyB), 'recovered on the next allowed fetch')
    })
  }
})

t.test('endpoint slow: the fetch times out, and the answer comes before the endpoint\'s', async (t) => {
  const { server, keys, advance } = await setup(t, [keyA], { timeoutMs: 1_000 })
  server.mode = 'slow'
  t.match(await refusal(keys, { alg: 'RS256', kid: 'key-a' }), { code: 'AUTH_KEYS_UNAVAILABLE' }, 'nothing cached: 503, not 401')
  await server.wasAbandoned(1)
  t.equal(server.abandoned, 1, 'the fetch gave up on the held request')

  server.mode = 'ok'
  advance(COOLDOWN_MS)
  t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-a' }), pemOf(keyA))
  server.mode = 'slow'
  advance(MAX_AGE_MS)
  t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-a' }), pemOf(keyA), 'stale and slow: the cached key still works after the timeout')
  await server.wasAbandoned(2)
  t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-a' }), pemOf(keyA), 'and without waiting until the next allowed fetch')
  t.equal(server.fetches, 3)
})

t.test('unreachable at start: refresh does not throw; tokens get AUTH_KEYS_UNAVAILABLE', async (t) => {
  const closedPort = await freePort()
  const { keys, logs } = await setup(t, [keyA], { url: `http://127.0.0.1:${closedPort}/.well-known/jwks.json` })
  await keys.refresh()
  t.match(keys.stats(), { fetches: 1, failures: 1, keys: 0 })
  t.match(logs, [{ level: 'error', msg: /fetch failed, could not connect/ }])
  t.match(await refusal(keys, { alg: 'RS256', kid: 'key-a' }), { code: 'AUTH_KEYS_UNAVAILABLE', retryAfterSeconds: 30 })
})

t.test('algorithms are pinned and checked before any fetch', async (t) => {
  const { server, keys } = await setup(t, [keyA])
  for (const alg of ['HS256', 'none', 'RS384', 'ES256', undefined]) {
    t.match(await refusal(keys, { alg, kid: 'key-a' }), { code: 'TOKEN_INVALID', message: /algorithm not allowed/ }, `alg ${String(alg)}`)
  }
  for (const kid of [undefined, '', 42, 'k'.repeat(300)]) {
    t.match(await refusal(keys, { alg: 'RS256', kid }), { code: 'TOKEN_INVALID', message: /names no key/ }, `kid ${JSON.stringify(kid)?.slice(0, 20)}`)
  }
  t.equal(server.fetches, 0, 'none of them caused a fetch')
})

t.test('RSA keys under 2048 bits are refused; ES256 is used only when configured', async (t) => {
  const weak = generateSigningKey('weak', 'RS256', { modulusLength: 1024 })
  const ec = generateSigningKey('ec', 'ES256')
  const rsOnly = await setup(t, [weak, keyA, ec])
  t.equal(await rsOnly.keys.keyFor({ alg: 'RS256', kid: 'key-a' }), pemOf(keyA))
  t.match(await refusal(rsOnly.keys, { alg: 'RS256', kid: 'weak' }), { code: 'TOKEN_INVALID' }, 'the 1024-bit key is not used')
  t.match(rsOnly.logs, [{ level: 'warn', data: { refused: [/weak: RSA key of 1024 bits/] } }], 'and the refusal is logged')
  t.match(await refusal(rsOnly.keys, { alg: 'ES256', kid: 'ec' }), { code: 'TOKEN_INVALID', message: /algorithm not allowed/ })

  const both = await setup(t, [keyA, ec], { algorithms: ['RS256', 'ES256'] })
  t.equal(await both.keys.keyFor({ alg: 'ES256', kid: 'ec' }), pemOf(ec))
  t.match(await refusal(both.keys, { alg: 'RS256', kid: 'ec' }), { code: 'TOKEN_INVALID' }, 'an EC key never verifies RS256')
  t.match(await refusal(both.keys, { alg: 'ES256', kid: 'key-a' }), { code: 'TOKEN_INVALID' }, 'an RSA key never verifies ES256')
})

t.test('a set with no usable key is a failed fetch: the keys cached stay', async (t) => {
  const weak = generateSigningKey('weak', 'RS256', { modulusLength: 1024 })
  const { server, keys, advance, logs } = await setup(t, [keyA])
  await keys.refresh()
  server.keys = [weak]
  advance(MAX_AGE_MS)
  t.equal(await keys.keyFor({ alg: 'RS256', kid: 'key-a' }), pemOf(keyA))
  t.match(logs.at(-1), { level: 'error', msg: /holds no key usable with RS256 \(refused: weak: RSA key of 1024 bits/ })
  t.match(await refusal(keys, { alg: 'RS256', kid: 'weak' }), { code: 'AUTH_KEYS_UNAVAILABLE' })
})

t.test('an answer larger than a key set is refused unread', async (t) => {
  const huge = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(`{"keys":[],"x":"${'x'.repeat(300_000)}"}`) })
  await new Promise<void>((resolve) => huge.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { huge.closeAllConnections(); huge.close() })
  const { keys, logs } = await setup(t, [keyA], { url: `http://127.0.0.1:${(huge.address() as AddressInfo).port}/jwks.json` })
  await keys.refresh()
  t.match(logs, [{ level: 'error', msg: /answered more than 262144 bytes/ }])
})
