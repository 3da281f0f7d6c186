import t from 'tap'
import { ConfigError, DEVELOPMENT_JWT_SECRET, loadConfig } from '../src/config.js'
import { runScript } from './helpers/run.js'

function problemsOf (env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

t.test('defaults give a working development setup', async (t) => {
  const config = loadConfig({})
  t.equal(config.databaseUrl, null, 'no DATABASE_URL means the embedded server')
  t.equal(config.tenantServers, null, 'school databases default to the catalog server')
  t.equal(config.port, 3000)
  t.equal(config.jwt.secret, DEVELOPMENT_JWT_SECRET)
  t.equal(config.jwt.usingDevelopmentSecret, true)
  t.equal(config.jwt.schoolClaim, 'school')
  t.equal(config.migrateConcurrency, 8)
  t.match(config.embedded.dataDir, /\.data\/postgres$/)
})

t.test('values are parsed', async (t) => {
  const config = loadConfig({
    PORT: '8080',
    DATABASE_URL: 'postgres://u:p@db.internal:5432/catalog',
    TENANT_SERVERS: 'default=postgres://u:p@a:5432, east=postgresql://u:p@b:6432/x',
    JWT_SECRET: 'x'.repeat(40),
    JWT_SCHOOL_CLAIM: 'https://schools.example.com/school',
    CORS_ORIGINS: 'https://app.example.com, https://admin.example.com',
    EMBEDDED_PG_FSYNC: 'off'
  })
  t.equal(config.port, 8080)
  t.same(config.tenantServers, { default: 'postgres://u:p@a:5432', east: 'postgresql://u:p@b:6432/x' })
  t.equal(config.jwt.usingDevelopmentSecret, false)
  t.equal(config.jwt.schoolClaim, 'https://schools.example.com/school')
  t.same(config.corsOrigins, ['https://app.example.com', 'https://admin.example.com'])
  t.equal(config.embedded.fsync, false)
})

t.test('DOCS_UI: on while developing, off in production unless asked for', async (t) => {
  const production = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), TENANT_ROLE_SECRET: 'y'.repeat(40) }
  t.equal(loadConfig({}).docsUi, true, 'development')
  t.equal(loadConfig({ NODE_ENV: 'test' }).docsUi, true, 'test')
  t.equal(loadConfig({ DOCS_UI: 'false' }).docsUi, false, 'turned off')
  t.equal(loadConfig(production).docsUi, false, 'production')
  t.equal(loadConfig({ ...production, DOCS_UI: 'true' }).docsUi, true, 'production, asked for')
  t.match(problemsOf({ DOCS_UI: 'sometimes' }), [/^DOCS_UI must be true or false \(got "sometimes"\)$/])
})

t.test('each bad value is named with what is wrong', async (t) => {
  t.match(problemsOf({ PORT: 'abc' }), [/^PORT must be a whole number from 0 to 65535 \(got "abc"\)$/])
  t.match(problemsOf({ PORT: '70000' }), [/^PORT must be/])
  t.match(problemsOf({ TENANT_POOL_SIZE: '0' }), [/^TENANT_POOL_SIZE must be a whole number from 1/])
  t.match(problemsOf({ DATABASE_URL: 'mysql://x@y/z' }), [/^DATABASE_URL must start with postgres:\/\//])
  t.match(problemsOf({ DATABASE_URL: 'not a url' }), [/^DATABASE_URL must be a URL like/])
  t.match(problemsOf({ TENANT_SERVERS: 'East=postgres://a/b' }), [/^TENANT_SERVERS .*"East" is not a valid server name/])
  t.match(problemsOf({ TENANT_SERVERS: 'a=postgres://h/x,a=postgres://h/y' }), [/names server "a" twice/])
  t.match(problemsOf({ LOG_LEVEL: 'loud' }), [/^LOG_LEVEL must be one of/])
  t.match(problemsOf({ EMBEDDED_PG_FSYNC: 'maybe' }), [/^EMBEDDED_PG_FSYNC must be true or false/])
  t.match(problemsOf({ JWT_SECRET: 'short' }), [/^JWT_SECRET must be at least 32 characters/])
  t.match(problemsOf({ NODE_ENV: 'production' }), [/a token key is required when NODE_ENV=production: set JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL or AUTH0_DOMAIN/])
  t.match(problemsOf({ JWT_PUBLIC_KEY: 'nope' }), [/^JWT_PUBLIC_KEY must be a PEM public key/])
  t.equal(problemsOf({ PORT: 'x', MIGRATE_CONCURRENCY: '-1' }).length, 2, 'all problems are reported at once')
})

t.test('TENANT_CONNECTIONS_MAX: one number, per server, or both; TENANT_POOLS_MAX says what replaced it', async (t) => {
  const servers = 'default=postgres://h/x,east=postgres://h2/x'
  t.same(loadConfig({}).tenantConnectionsMax, { all: null, servers: {} }, 'unset: worked out from each server at start')
  t.same(loadConfig({ TENANT_CONNECTIONS_MAX: '150' }).tenantConnectionsMax, { all: 150, servers: {} })
  t.same(loadConfig({ TENANT_SERVERS: servers, TENANT_CONNECTIONS_MAX: '150, east=300' }).tenantConnectionsMax, { all: 150, servers: { east: 300 } })
  t.match(problemsOf({ TENANT_CONNECTIONS_MAX: 'lots' }), [/^TENANT_CONNECTIONS_MAX must be a whole number of connections, or server=number entries .*"lots" is neither/])
  t.match(problemsOf({ TENANT_CONNECTIONS_MAX: '0' }), [/"0" is neither/])
  t.match(problemsOf({ TENANT_SERVERS: servers, TENANT_CONNECTIONS_MAX: 'west=10' }), [/names server "west", which TENANT_SERVERS does not \(default, east\)/])
  t.same(loadConfig({ TENANT_SERVERS: servers, TENANT_POOLERS: 'east=postgres://bouncer:6432' }).tenantPoolers, { east: 'postgres://bouncer:6432' })
  t.same(loadConfig({ TENANT_POOLERS: 'default=postgres://127.0.0.1:6432' }).tenantPoolers, { default: 'postgres://127.0.0.1:6432' },
    'without TENANT_SERVERS, the one server is called default')
  t.match(problemsOf({ TENANT_SERVERS: servers, TENANT_POOLERS: 'west=postgres://bouncer:6432' }), [/^TENANT_POOLERS names server "west", which TENANT_SERVERS does not \(default, east\)$/])
  t.match(problemsOf({ TENANT_POOLERS: 'default=postgres://school:secret@bouncer:6432' }),
    [/^TENANT_POOLERS: the pooler of server "default" must be given without a user or password \(each school logs in with its own role\)/])
  t.match(problemsOf({ TENANT_POOLERS: 'default=http://bouncer:6432' }), [/^TENANT_POOLERS: server "default" must start with postgres:\/\//])
  t.match(problemsOf({ TENANT_POOLS_MAX: '50', TENANT_POOL_SIZE: '2' }),
    [/^TENANT_POOLS_MAX is gone: .* Replace it with TENANT_CONNECTIONS_MAX=<pools × TENANT_POOL_SIZE> \(here 100\), or leave both unset/])
  t.equal(loadConfig({}).tenantIdleTimeoutMs, 300_000, 'a school keeps its last connection for 5 minutes unused')
})

t.test('a key set: JWT_JWKS_URL, or AUTH0_DOMAIN as its shorthand', async (t) => {
  const auth0 = loadConfig({ AUTH0_DOMAIN: 'school-lunch.eu.auth0.com', AUTH0_AUDIENCE: 'https://api.example', NODE_ENV: 'production', TENANT_ROLE_SECRET: 'r'.repeat(40) })
  t.same(auth0.jwt.jwks, {
    url: 'https://school-lunch.eu.auth0.com/.well-known/jwks.json',
    algorithms: ['RS256'],
    cooldownMs: 30_000,
    cacheMaxAgeMs: 600_000,
    timeoutMs: 2_000
  }, 'the key set URL and the defaults')
  t.equal(auth0.jwt.issuer, 'https://school-lunch.eu.auth0.com/', 'the issuer, with the trailing slash Auth0 writes')
  t.equal(auth0.jwt.audience, 'https://api.example', 'AUTH0_AUDIENCE is the audience')
  t.equal(auth0.jwt.secret, null, 'no development secret beside it')
  t.equal(auth0.jwt.usingDevelopmentSecret, false)
  t.equal(loadConfig({ AUTH0_DOMAIN: 'https://login.example.com/', JWT_AUDIENCE: 'a' }).jwt.jwks?.url,
    'https://login.example.com/.well-known/jwks.json', 'a custom domain, written as a URL')

  const set = loadConfig({
    JWT_JWKS_URL: 'http://127.0.0.1:8080/jwks.json',
    JWT_AUDIENCE: 'api',
    JWT_JWKS_ALGORITHMS: 'RS256, ES256',
    JWT_JWKS_COOLDOWN_MS: '5000',
    JWT_JWKS_CACHE_MAX_AGE_MS: '60000',
    JWT_JWKS_TIMEOUT_MS: '500'
  })
  t.same(set.jwt.jwks, { url: 'http://127.0.0.1:8080/jwks.json', algorithms: ['RS256', 'ES256'], cooldownMs: 5000, cacheMaxAgeMs: 60000, timeoutMs: 500 })
  t.equal(set.jwt.issuer, null, 'no issuer unless set')
  for (const url of ['http://localhost:3001/jwks', 'http://[::1]:3001/jwks', 'http://127.0.0.2/jwks']) {
    t.same(problemsOf({ JWT_JWKS_URL: url, JWT_AUDIENCE: 'api' }), [], `plain http on loopback: ${url}`)
  }
})

t.test('a key set: each mistake is named', async (t) => {
  t.match(problemsOf({ JWT_JWKS_URL: 'http://auth.example.com/jwks.json', JWT_AUDIENCE: 'a' }), [/^JWT_JWKS_URL must start with https:\/\/ \(http:\/\/ is allowed only for localhost/])
  t.match(problemsOf({ JWT_JWKS_URL: 'http://10.0.0.5/jwks.json', JWT_AUDIENCE: 'a' }), [/^JWT_JWKS_URL must start with https/], 'a private address is not loopback')
  t.match(problemsOf({ JWT_JWKS_URL: 'file:///etc/passwd', JWT_AUDIENCE: 'a' }), [/^JWT_JWKS_URL must start with https/])
  t.match(problemsOf({ JWT_JWKS_URL: 'not a url', JWT_AUDIENCE: 'a' }), [/^JWT_JWKS_URL must be a URL/])
  t.match(problemsOf({ JWT_JWKS_URL: 'https://u:secret@auth.example.com/jwks', JWT_AUDIENCE: 'a' }), [/^JWT_JWKS_URL must not carry a user or password$/])
  t.match(problemsOf({ JWT_JWKS_URL: 'https://auth.example.com/jwks' }), [/^JWT_AUDIENCE \(or AUTH0_AUDIENCE\) is required with a key set/])
  t.match(problemsOf({ AUTH0_DOMAIN: 'tenant.auth0.com' }), [/^JWT_AUDIENCE \(or AUTH0_AUDIENCE\) is required/])
  t.match(problemsOf({ AUTH0_DOMAIN: 'tenant.auth0.com/path', JWT_AUDIENCE: 'a' }), [/^AUTH0_DOMAIN must be a domain name like tenant.eu.auth0.com/])
  t.match(problemsOf({ AUTH0_DOMAIN: 'tenant.auth0.com', JWT_JWKS_URL: 'https://x.example/jwks', JWT_AUDIENCE: 'a' }), [/^AUTH0_DOMAIN and JWT_JWKS_URL are both set/])
  t.match(problemsOf({ AUTH0_DOMAIN: 'tenant.auth0.com', JWT_ISSUER: 'https://tenant.auth0.com', JWT_AUDIENCE: 'a' }), [/^JWT_ISSUER \("https:\/\/tenant.auth0.com"\) differs/], 'the issuer without its slash would never match')
  t.same(problemsOf({ AUTH0_DOMAIN: 'tenant.auth0.com', JWT_ISSUER: 'https://tenant.auth0.com/', JWT_AUDIENCE: 'a' }), [], 'the same issuer is fine')
  t.match(problemsOf({ JWT_AUDIENCE: 'a', AUTH0_AUDIENCE: 'b', AUTH0_DOMAIN: 'tenant.auth0.com' }), [/^JWT_AUDIENCE and AUTH0_AUDIENCE are both set, to different values/])
  t.match(problemsOf({ AUTH0_DOMAIN: 'tenant.auth0.com', JWT_AUDIENCE: 'a', JWT_SECRET: 's'.repeat(40) }), [/^AUTH0_DOMAIN cannot be combined with JWT_SECRET or JWT_PUBLIC_KEY/])
  t.match(problemsOf({ AUTH0_DOMAIN: 'tenant.auth0.com', JWT_AUDIENCE: 'a', JWT_JWKS_ALGORITHMS: 'RS256,HS256' }), [/^JWT_JWKS_ALGORITHMS may list RS256 and ES256 only \(got "HS256"\)/])
  t.match(problemsOf({ JWT_JWKS_ALGORITHMS: 'ES256' }), [/^JWT_JWKS_ALGORITHMS applies to a key set only/])
  t.match(problemsOf({ AUTH0_DOMAIN: 'tenant.auth0.com', JWT_AUDIENCE: 'a', JWT_JWKS_COOLDOWN_MS: '10' }), [/^JWT_JWKS_COOLDOWN_MS must be a whole number from 1000/], 'a cooldown too short to bound a flood')
  t.same(problemsOf({ NODE_ENV: 'production', JWT_JWKS_URL: 'http://auth.example.com/j', JWT_AUDIENCE: 'a', TENANT_ROLE_SECRET: 'r'.repeat(40) }).length, 1,
    'a bad key set URL in production is one problem, not also "no key"')
})

t.test('a password in a bad URL is never echoed', async (t) => {
  const problems = problemsOf({ TENANT_SERVERS: 'a=mysql://user:s3cret@h/x' })
  t.equal(problems.length, 1)
  t.notMatch(problems.join('\n'), /s3cret/)
})

t.test('a script with a bad setting stops with the message, not a stack trace', async (t) => {
  const result = await runScript('scripts/migrate.ts', [], { PORT: 'abc', TENANT_POOL_SIZE: 'lots' })
  t.equal(result.code, 1)
  t.match(result.stderr, /PORT must be a whole number from 0 to 65535 \(got "abc"\)/)
  t.match(result.stderr, /TENANT_POOL_SIZE must be a whole number/)
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace')
})

t.test('the public limit and the trusted proxies', async (t) => {
  t.match(loadConfig({}), { publicRateLimitMax: 0, publicRateLimitWindowMs: 60_000, trustProxy: false }, 'off in development, no proxy trusted')
  t.equal(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), TENANT_ROLE_SECRET: 'y'.repeat(40) }).publicRateLimitMax, 600, 'on in production')
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
  t.equal(loadConfig({ TRUST_PROXY: 'false' }).trustProxy, false)
  t.same(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.0.2.1, fd00::/8, loopback' }).trustProxy, ['10.0.0.0/8', '192.0.2.1', 'fd00::/8', 'loopback'])
  t.match(problemsOf({ TRUST_PROXY: '2' }), [/^TRUST_PROXY must be true, false, or the proxies' addresses .*\(got "2"\)$/], 'no hop count')
  t.match(problemsOf({ TRUST_PROXY: '10.0.0.0/33' }), [/^TRUST_PROXY must be/])
  t.match(problemsOf({ TRUST_PROXY: '10.0.0.1,lb.internal' }), [/\(got "lb.internal"\)$/])
  t.match(problemsOf({ PUBLIC_RATE_LIMIT_MAX: '-1' }), [/^PUBLIC_RATE_LIMIT_MAX must be a whole number from 0/])
  t.match(problemsOf({ PUBLIC_RATE_LIMIT_WINDOW_MS: '10' }), [/^PUBLIC_RATE_LIMIT_WINDOW_MS must be a whole number from 1000/])
  t.equal(loadConfig({}).publicWeekWindowYears, 2, 'public weeks: two years either side of today')
  t.equal(loadConfig({ PUBLIC_WEEK_WINDOW_YEARS: '5' }).publicWeekWindowYears, 5)
  t.match(problemsOf({ PUBLIC_WEEK_WINDOW_YEARS: '0' }), [/^PUBLIC_WEEK_WINDOW_YEARS must be a whole number from 1 to 100/])
})

t.test('METRICS: on unless turned off', async (t) => {
  t.equal(loadConfig({}).metrics, true)
  t.equal(loadConfig({ METRICS: 'false' }).metrics, false)
  t.match(problemsOf({ METRICS: 'maybe' }), [/^METRICS must be true or false \(got "maybe"\)$/])
})

t.test('SHUTDOWN_DRAIN_MS: 2 s unless set, 0 to close at once', async (t) => {
  t.equal(loadConfig({}).shutdownDrainMs, 2000, 'HAProxy (inter 500ms, fall 2) drops a process about 1 s after /ready fails')
  t.equal(loadConfig({ SHUTDOWN_DRAIN_MS: '0' }).shutdownDrainMs, 0)
  t.match(problemsOf({ SHUTDOWN_DRAIN_MS: '60001' }), [/^SHUTDOWN_DRAIN_MS must be a whole number from 0 to 60000 \(got "60001"\)$/])
  t.match(problemsOf({ SHUTDOWN_DRAIN_MS: '-1' }), [/^SHUTDOWN_DRAIN_MS must be a whole number/])
})
