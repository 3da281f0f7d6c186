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
  t.match(problemsOf({ NODE_ENV: 'production' }), [/JWT_SECRET or JWT_PUBLIC_KEY is required when NODE_ENV=production/])
  t.match(problemsOf({ JWT_PUBLIC_KEY: 'nope' }), [/^JWT_PUBLIC_KEY must be a PEM public key/])
  t.equal(problemsOf({ PORT: 'x', MIGRATE_CONCURRENCY: '-1' }).length, 2, 'all problems are reported at once')
})

t.test('a password in a bad URL is never echoed', async (t) => {
  const problems = problemsOf({ TENANT_SERVERS: 'a=mysql://user:s3cret@h/x' })
  t.equal(problems.length, 1)
  t.notMatch(problems.join('\n'), /s3cret/)
})

t.test('a script with a bad setting stops with the message, not a stack trace', async (t) => {
  const result = await runScript('scripts/migrate.ts', [], { PORT: 'abc', TENANT_POOLS_MAX: 'lots' })
  t.equal(result.code, 1)
  t.match(result.stderr, /PORT must be a whole number from 0 to 65535 \(got "abc"\)/)
  t.match(result.stderr, /TENANT_POOLS_MAX must be a whole number/)
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
