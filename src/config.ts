import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import dotenv from 'dotenv'
import { EnvReader, readSettings, type ConnectionBudgets, type Env } from './env-reader.js'
import { settings } from './settings/all.js'

// The shape the reader gives TENANT_CONNECTIONS_MAX is part of Config's.
export type { ConnectionBudgets }

/**
 * The project root: the nearest folder above this file with a package.json,
 * whether it runs from src/, from dist/src/ or from the test suite's
 * compiled copy under .data/.
 */
export const projectRoot = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)))

function findProjectRoot (dir: string): string {
  const up = path.dirname(dir)
  if (fs.existsSync(path.join(up, 'package.json')) || up === dir) return up
  return findProjectRoot(up)
}

export type NodeEnv = (typeof settings.NODE_ENV.values)[number]

export interface EmbeddedPostgresConfig {
  dataDir: string
  port: number
  password: string
  maxConnections: number
  /** fsync off trades crash safety of the dev/test cluster for speed. */
  fsync: boolean
}

/** Algorithms a key from a JWKS may be used with; everything else is refused. */
export type JwksAlgorithm = 'RS256' | 'ES256'

export interface JwksConfig {
  /** Where the key set is fetched; https, or http on a loopback address. */
  url: string
  algorithms: JwksAlgorithm[]
  /** At most one fetch starts per this many milliseconds, whatever the traffic. */
  cooldownMs: number
  /** A fetched set is refreshed once it is this old. */
  cacheMaxAgeMs: number
  /** A fetch that has not finished by then fails. */
  timeoutMs: number
}

export interface JwtConfig {
  secret: string | null
  publicKey: string | null
  /** Keys from a JSON Web Key Set (Auth0), instead of a secret or one PEM. */
  jwks: JwksConfig | null
  issuer: string | null
  audience: string | null
  schoolClaim: string
  schoolsClaim: string
  /** True when no key was configured and the development secret is in use. */
  usingDevelopmentSecret: boolean
}

export interface Config {
  nodeEnv: NodeEnv
  /** Derives each school role's password (HMAC); never stored anywhere. */
  tenantRoleSecret: string
  host: string
  port: number
  logLevel: string
  /** The catalog database. Null means: start or attach to the embedded server. */
  databaseUrl: string | null
  /**
   * Named PostgreSQL servers that hold school databases, name → URL (the URL's
   * database part is ignored). Null means: one server named `default`, the
   * catalog's own.
   */
  tenantServers: Record<string, string> | null
  /**
   * TENANT_POOLERS: server name → the PgBouncer in front of it, for the
   * API's school connections only. Null: the API connects directly.
   */
  tenantPoolers: Record<string, string> | null
  embedded: EmbeddedPostgresConfig
  jwt: JwtConfig
  catalogPoolSize: number
  catalogCacheTtlMs: number
  /** TENANT_POOL_SIZE: the most connections one school may hold. */
  tenantPoolSize: number
  /** TENANT_CONNECTIONS_MAX: the connection budget of each tenant server, per process. */
  tenantConnectionsMax: ConnectionBudgets
  /** A school unused this long loses its last connection. */
  tenantIdleTimeoutMs: number
  /** New connections opening at once, per server. */
  tenantConnectConcurrency: number
  migrateConcurrency: number
  /** How CREATE DATABASE copies its template (PostgreSQL 15+); null: the server's default. */
  createDatabaseStrategy: 'wal_log' | 'file_copy' | null
  /** How file_copy copies files on PostgreSQL 18+. */
  createDatabaseCopyMethod: 'clone' | 'copy'
  corsOrigins: string[]
  /** DOCS_UI: Swagger UI at /docs; the document at /docs/json is served either way. */
  docsUi: boolean
  /** Requests per school per window; 0 turns rate limiting off. */
  rateLimitMax: number
  rateLimitWindowMs: number
  /** Requests per client address per window on the public routes; 0 turns it off. */
  publicRateLimitMax: number
  publicRateLimitWindowMs: number
  /** The public page answers weeks this many years either side of today. */
  publicWeekWindowYears: number
  /**
   * Which proxies' X-Forwarded-For to believe for the client's address
   * (Fastify's trustProxy): false (none), true (any), or addresses and CIDRs.
   */
  trustProxy: boolean | string[]
  /** METRICS: GET /metrics, prom-client's process metrics and the request-duration histogram. */
  metrics: boolean
  /** SHUTDOWN_DRAIN_MS: after SIGTERM, /ready answers 503 and the listener keeps accepting this long. */
  shutdownDrainMs: number
}

/** A configuration problem: the message names the variable and what is wrong. */
export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

export const DEVELOPMENT_JWT_SECRET = 'development-only-secret-change-me-in-production'
export const DEVELOPMENT_ROLE_SECRET = 'development-only-role-secret-change-me-in-production'

/**
 * Reads and validates every setting once. Collects all problems before it
 * throws, so an operator fixes a broken .env in one pass.
 */
export function loadConfig (env: Env = process.env): Config {
  const problems: string[] = []
  const nodeEnv = new EnvReader(env, problems).choice(settings.NODE_ENV)
  const read = new EnvReader(env, problems, nodeEnv === 'production')

  const databaseUrl = read.postgresUrl(settings.DATABASE_URL)
  const tenantServers = read.serverMap(settings.TENANT_SERVERS)
  const tenantPoolers = read.serverMap(settings.TENANT_POOLERS)

  const jwt = readJwt(read, problems, nodeEnv)

  // Read once: the migration hint below uses it too, and a bad value is reported once.
  const tenantPoolSize = read.integer(settings.TENANT_POOL_SIZE)
  const poolsMax = read.text(settings.TENANT_POOLS_MAX)
  if (poolsMax !== null) {
    problems.push('TENANT_POOLS_MAX is gone: the budget is now counted in connections per tenant server. ' +
      `Replace it with TENANT_CONNECTIONS_MAX=<pools × TENANT_POOL_SIZE>${/^\d+$/.test(poolsMax) ? ` (here ${Number(poolsMax) * tenantPoolSize})` : ''}, or leave both unset to size it from the server`)
  }

  const roleSecret = read.text(settings.TENANT_ROLE_SECRET)
  if (roleSecret === null && nodeEnv === 'production') {
    problems.push('TENANT_ROLE_SECRET is required when NODE_ENV=production')
  }

  const config: Config = {
    nodeEnv,
    tenantRoleSecret: roleSecret ?? DEVELOPMENT_ROLE_SECRET,
    host: read.text(settings.HOST),
    port: read.integer(settings.PORT),
    logLevel: read.choice(settings.LOG_LEVEL),
    databaseUrl,
    tenantServers,
    tenantPoolers,
    embedded: {
      dataDir: path.resolve(projectRoot, read.text(settings.EMBEDDED_PG_DIR)),
      port: read.integer(settings.EMBEDDED_PG_PORT),
      password: read.text(settings.EMBEDDED_PG_PASSWORD),
      maxConnections: read.integer(settings.EMBEDDED_PG_MAX_CONNECTIONS),
      fsync: read.boolean(settings.EMBEDDED_PG_FSYNC)
    },
    jwt,
    catalogPoolSize: read.integer(settings.CATALOG_POOL_SIZE),
    catalogCacheTtlMs: read.integer(settings.CATALOG_CACHE_TTL_MS),
    tenantPoolSize,
    tenantConnectionsMax: read.budgets(settings.TENANT_CONNECTIONS_MAX),
    tenantIdleTimeoutMs: read.integer(settings.TENANT_IDLE_TIMEOUT_MS),
    tenantConnectConcurrency: read.integer(settings.TENANT_CONNECT_CONCURRENCY),
    migrateConcurrency: read.integer(settings.MIGRATE_CONCURRENCY),
    createDatabaseStrategy: ((strategy) => strategy === 'default' ? null : strategy)(read.choice(settings.CREATE_DATABASE_STRATEGY)),
    createDatabaseCopyMethod: read.choice(settings.CREATE_DATABASE_COPY_METHOD),
    corsOrigins: read.list(settings.CORS_ORIGINS),
    // DOCS_UI and the two rate limits default otherwise in production: the
    // reader takes that default from their declarations too.
    docsUi: read.boolean(settings.DOCS_UI),
    rateLimitMax: read.integer(settings.RATE_LIMIT_MAX),
    rateLimitWindowMs: read.integer(settings.RATE_LIMIT_WINDOW_MS),
    publicRateLimitMax: read.integer(settings.PUBLIC_RATE_LIMIT_MAX),
    publicRateLimitWindowMs: read.integer(settings.PUBLIC_RATE_LIMIT_WINDOW_MS),
    publicWeekWindowYears: read.integer(settings.PUBLIC_WEEK_WINDOW_YEARS),
    trustProxy: read.trustProxy(settings.TRUST_PROXY),
    metrics: read.boolean(settings.METRICS),
    shutdownDrainMs: read.integer(settings.SHUTDOWN_DRAIN_MS)
  }

  const serverNames = tenantServers === null ? ['default'] : Object.keys(tenantServers)
  for (const [server, url] of Object.entries(tenantPoolers ?? {})) {
    if (!serverNames.includes(server)) problems.push(`TENANT_POOLERS names server "${server}", which TENANT_SERVERS does not (${serverNames.join(', ')})`)
    const { username, password } = new URL(url)
    if (username !== '' || password !== '') {
      problems.push(`TENANT_POOLERS: the pooler of server "${server}" must be given without a user or password (each school logs in with its own role), like postgres://pgbouncer-host:6432`)
    }
  }
  for (const server of Object.keys(config.tenantConnectionsMax.servers)) {
    if (!serverNames.includes(server)) problems.push(`TENANT_CONNECTIONS_MAX names server "${server}", which TENANT_SERVERS does not (${serverNames.join(', ')})`)
  }

  if (problems.length > 0) throw new ConfigError(problems)
  return config
}

/**
 * Loads `.env` from the project root, or the file ENV_FILE names (values
 * already in the environment win),
 * then validates. On a bad value it prints the problems and exits: operators
 * get a message naming the variable, never a stack trace.
 */
export function loadConfigOrExit (): Config {
  const envFile = readSettings(process.env, (read) => read.text(settings.ENV_FILE))
  dotenv.config({ path: envFile ?? path.join(projectRoot, '.env'), quiet: true })
  try {
    return loadConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\nSee .env.example for every setting.\n`)
      process.exit(1)
    }
    throw error
  }
}

/**
 * The token settings: one HS256 secret, one RS256 PEM, or a key set (JWKS)
 * given by URL or by its Auth0 domain. A key set serves every API of its
 * tenant, so it comes with a required audience.
 */
function readJwt (read: EnvReader, problems: string[], nodeEnv: NodeEnv): JwtConfig {
  const secret = read.text(settings.JWT_SECRET)
  const publicKey = read.text(settings.JWT_PUBLIC_KEY)?.replace(/\\n/g, '\n') ?? null
  if (secret !== null && publicKey !== null) {
    problems.push('JWT_SECRET and JWT_PUBLIC_KEY are both set: choose HS256 (JWT_SECRET) or RS256 (JWT_PUBLIC_KEY), not both')
  }
  if (publicKey !== null && !/-----BEGIN (RSA )?PUBLIC KEY-----/.test(publicKey)) {
    problems.push('JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----)')
  }

  const auth0Domain = read.auth0Domain(settings.AUTH0_DOMAIN)
  const jwksUrl = read.jwksUrl(settings.JWT_JWKS_URL)
  if (auth0Domain !== null && read.isSet(settings.JWT_JWKS_URL)) {
    problems.push('AUTH0_DOMAIN and JWT_JWKS_URL are both set: AUTH0_DOMAIN already names the key set; set one of them')
  }
  const keySetUrl = auth0Domain !== null ? `https://${auth0Domain}/.well-known/jwks.json` : jwksUrl
  if (keySetUrl !== null && (secret !== null || publicKey !== null)) {
    problems.push(`${auth0Domain !== null ? 'AUTH0_DOMAIN' : 'JWT_JWKS_URL'} cannot be combined with JWT_SECRET or JWT_PUBLIC_KEY: choose one source of keys`)
  }

  let issuer = read.text(settings.JWT_ISSUER)
  if (auth0Domain !== null) {
    // Auth0 writes its issuer with a trailing slash.
    const auth0Issuer = `https://${auth0Domain}/`
    if (issuer !== null && issuer !== auth0Issuer) {
      problems.push(`JWT_ISSUER ("${issuer}") differs from the issuer AUTH0_DOMAIN implies ("${auth0Issuer}"); leave JWT_ISSUER unset`)
    }
    issuer = auth0Issuer
  }
  const audience = read.text(settings.JWT_AUDIENCE)
  const auth0Audience = read.text(settings.AUTH0_AUDIENCE)
  if (audience !== null && auth0Audience !== null && audience !== auth0Audience) {
    problems.push('JWT_AUDIENCE and AUTH0_AUDIENCE are both set, to different values; set one of them')
  }
  if (keySetUrl !== null && audience === null && auth0Audience === null) {
    problems.push('JWT_AUDIENCE (or AUTH0_AUDIENCE) is required with a key set (JWT_JWKS_URL or AUTH0_DOMAIN): the same keys sign tokens for every API of the tenant')
  }

  const algorithms = read.list(settings.JWT_JWKS_ALGORITHMS)
  if (read.isSet(settings.JWT_JWKS_ALGORITHMS) && keySetUrl === null) {
    problems.push('JWT_JWKS_ALGORITHMS applies to a key set only; set JWT_JWKS_URL or AUTH0_DOMAIN, or remove it')
  }
  const jwks: JwksConfig | null = keySetUrl === null
    ? null
    : {
        url: keySetUrl,
        algorithms: [...new Set(algorithms as JwksAlgorithm[])],
        cooldownMs: read.integer(settings.JWT_JWKS_COOLDOWN_MS),
        cacheMaxAgeMs: read.integer(settings.JWT_JWKS_CACHE_MAX_AGE_MS),
        timeoutMs: read.integer(settings.JWT_JWKS_TIMEOUT_MS)
      }

  const noKey = secret === null && publicKey === null && jwks === null
  if (noKey && nodeEnv === 'production' && !read.isSet(settings.JWT_JWKS_URL) && !read.isSet(settings.AUTH0_DOMAIN)) {
    problems.push('a token key is required when NODE_ENV=production: set JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL or AUTH0_DOMAIN')
  }
  return {
    secret: noKey && nodeEnv !== 'production' ? DEVELOPMENT_JWT_SECRET : secret,
    publicKey,
    jwks,
    issuer,
    audience: audience ?? auth0Audience,
    schoolClaim: read.text(settings.JWT_SCHOOL_CLAIM),
    schoolsClaim: read.text(settings.JWT_SCHOOLS_CLAIM),
    usingDevelopmentSecret: noKey && nodeEnv !== 'production'
  }
}
