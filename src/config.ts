import { isIP } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import dotenv from 'dotenv'

/** The project root, whether this file runs from src/ or from dist/src/. */
export const projectRoot = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)))

function findProjectRoot (dir: string): string {
  const up = path.resolve(dir, '..')
  return path.basename(up) === 'dist' ? path.resolve(up, '..') : up
}

export type NodeEnv = 'development' | 'test' | 'production'

export interface EmbeddedPostgresConfig {
  dataDir: string
  port: number
  password: string
  maxConnections: number
  /** fsync off trades crash safety of the dev/test cluster for speed. */
  fsync: boolean
}

export interface JwtConfig {
  secret: string | null
  publicKey: string | null
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
  embedded: EmbeddedPostgresConfig
  jwt: JwtConfig
  catalogPoolSize: number
  catalogCacheTtlMs: number
  tenantPoolSize: number
  tenantPoolsMax: number
  migrateConcurrency: number
  /** How CREATE DATABASE copies its template (PostgreSQL 15+); null: the server's default. */
  createDatabaseStrategy: 'wal_log' | 'file_copy' | null
  corsOrigins: string[]
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
export const SERVER_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,62}$/

type Env = Record<string, string | undefined>

/**
 * Reads and validates every setting once. Collects all problems before it
 * throws, so an operator fixes a broken .env in one pass.
 */
export function loadConfig (env: Env = process.env): Config {
  const problems: string[] = []
  const read = new EnvReader(env, problems)

  const nodeEnv = read.oneOf('NODE_ENV', ['development', 'test', 'production'] as const, 'development')
  const databaseUrl = read.postgresUrl('DATABASE_URL')
  const tenantServers = read.serverMap('TENANT_SERVERS')

  const jwtSecret = read.string('JWT_SECRET')
  const jwtPublicKey = read.string('JWT_PUBLIC_KEY')?.replace(/\\n/g, '\n') ?? null
  if (jwtSecret !== null && jwtPublicKey !== null) {
    problems.push('JWT_SECRET and JWT_PUBLIC_KEY are both set: choose HS256 (JWT_SECRET) or RS256 (JWT_PUBLIC_KEY), not both')
  }
  if (jwtPublicKey !== null && !/-----BEGIN (RSA )?PUBLIC KEY-----/.test(jwtPublicKey)) {
    problems.push('JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----)')
  }
  if (jwtSecret !== null && jwtSecret.length < 32) {
    problems.push(`JWT_SECRET must be at least 32 characters long (got ${jwtSecret.length})`)
  }
  const noKey = jwtSecret === null && jwtPublicKey === null
  if (noKey && nodeEnv === 'production') {
    problems.push('JWT_SECRET or JWT_PUBLIC_KEY is required when NODE_ENV=production')
  }

  const embeddedDir = read.string('EMBEDDED_PG_DIR') ?? '.data/postgres'

  const roleSecret = read.string('TENANT_ROLE_SECRET')
  if (roleSecret !== null && roleSecret.length < 32) {
    problems.push(`TENANT_ROLE_SECRET must be at least 32 characters long (got ${roleSecret.length})`)
  }
  if (roleSecret === null && nodeEnv === 'production') {
    problems.push('TENANT_ROLE_SECRET is required when NODE_ENV=production')
  }

  const config: Config = {
    nodeEnv,
    tenantRoleSecret: roleSecret ?? DEVELOPMENT_ROLE_SECRET,
    host: read.string('HOST') ?? '127.0.0.1',
    port: read.integer('PORT', 3000, 0, 65535),
    logLevel: read.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    databaseUrl,
    tenantServers,
    embedded: {
      dataDir: path.resolve(projectRoot, embeddedDir),
      port: read.integer('EMBEDDED_PG_PORT', 15432, 1024, 65535),
      password: read.string('EMBEDDED_PG_PASSWORD') ?? 'postgres',
      maxConnections: read.integer('EMBEDDED_PG_MAX_CONNECTIONS', 200, 20, 10000),
      fsync: read.boolean('EMBEDDED_PG_FSYNC', true)
    },
    jwt: {
      secret: noKey && nodeEnv !== 'production' ? DEVELOPMENT_JWT_SECRET : jwtSecret,
      publicKey: jwtPublicKey,
      issuer: read.string('JWT_ISSUER'),
      audience: read.string('JWT_AUDIENCE'),
      schoolClaim: read.string('JWT_SCHOOL_CLAIM') ?? 'school',
      schoolsClaim: read.string('JWT_SCHOOLS_CLAIM') ?? 'schools',
      usingDevelopmentSecret: noKey && nodeEnv !== 'production'
    },
    catalogPoolSize: read.integer('CATALOG_POOL_SIZE', 5, 1, 100),
    catalogCacheTtlMs: read.integer('CATALOG_CACHE_TTL_MS', 30_000, 0, 3_600_000),
    tenantPoolSize: read.integer('TENANT_POOL_SIZE', 5, 1, 100),
    tenantPoolsMax: read.integer('TENANT_POOLS_MAX', 50, 1, 100_000),
    migrateConcurrency: read.integer('MIGRATE_CONCURRENCY', 8, 1, 256),
    createDatabaseStrategy: ((strategy) => strategy === 'default' ? null : strategy)(
      read.oneOf('CREATE_DATABASE_STRATEGY', ['default', 'wal_log', 'file_copy'] as const, 'file_copy')),
    corsOrigins: read.list('CORS_ORIGINS'),
    // Off while developing and testing; on by default in production.
    rateLimitMax: read.integer('RATE_LIMIT_MAX', nodeEnv === 'production' ? 1200 : 0, 0, 1_000_000),
    rateLimitWindowMs: read.integer('RATE_LIMIT_WINDOW_MS', 60_000, 1_000, 3_600_000),
    publicRateLimitMax: read.integer('PUBLIC_RATE_LIMIT_MAX', nodeEnv === 'production' ? 600 : 0, 0, 1_000_000),
    publicRateLimitWindowMs: read.integer('PUBLIC_RATE_LIMIT_WINDOW_MS', 60_000, 1_000, 3_600_000),
    publicWeekWindowYears: read.integer('PUBLIC_WEEK_WINDOW_YEARS', 2, 1, 100),
    trustProxy: read.trustProxy('TRUST_PROXY')
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
  dotenv.config({ path: process.env.ENV_FILE ?? path.join(projectRoot, '.env'), quiet: true })
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

class EnvReader {
  constructor (private readonly env: Env, private readonly problems: string[]) {}

  string (name: string): string | null {
    const value = this.env[name]?.trim()
    return value === undefined || value === '' ? null : value
  }

  integer (name: string, fallback: number, min: number, max: number): number {
    const raw = this.string(name)
    if (raw === null) return fallback
    if (!/^-?\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      this.problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`)
      return fallback
    }
    return Number(raw)
  }

  boolean (name: string, fallback: boolean): boolean {
    const raw = this.string(name)
    if (raw === null) return fallback
    if (/^(true|1|yes|on)$/i.test(raw)) return true
    if (/^(false|0|no|off)$/i.test(raw)) return false
    this.problems.push(`${name} must be true or false (got "${raw}")`)
    return fallback
  }

  oneOf<T extends string> (name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.string(name)
    if (raw === null) return fallback
    if ((allowed as readonly string[]).includes(raw)) return raw as T
    this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${raw}")`)
    return fallback
  }

  list (name: string): string[] {
    const raw = this.string(name)
    if (raw === null) return []
    return raw.split(',').map((item) => item.trim()).filter((item) => item !== '')
  }

  /**
   * `false`, `true`, or addresses, CIDRs and proxy-addr's names (loopback, …).
   * No hop count: Fastify then trusts no proxy at all, since a hop count
   * cannot tell the balancer from a client that sends the header itself.
   */
  trustProxy (name: string): boolean | string[] {
    const raw = this.string(name)
    if (raw === null || /^(false|no|off)$/i.test(raw)) return false
    if (/^(true|yes|on)$/i.test(raw)) return true
    const entries = raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
    const bad = entries.filter((entry) => !isProxyAddress(entry))
    if (bad.length > 0) {
      this.problems.push(`${name} must be true, false, or the proxies' addresses and CIDR ranges separated by commas (got "${bad[0] ?? ''}")`)
      return false
    }
    return entries
  }

  postgresUrl (name: string, raw = this.string(name)): string | null {
    if (raw === null) return null
    const problem = postgresUrlProblem(raw)
    if (problem !== null) {
      this.problems.push(`${name} ${problem}`)
      return null
    }
    return raw
  }

  /** `name=postgres://…,name2=postgres://…` */
  serverMap (name: string): Record<string, string> | null {
    const raw = this.string(name)
    if (raw === null) return null
    const servers: Record<string, string> = {}
    for (const entry of raw.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
      const eq = entry.indexOf('=')
      const serverName = eq > 0 ? entry.slice(0, eq).trim() : ''
      const url = eq > 0 ? entry.slice(eq + 1).trim() : ''
      if (!SERVER_NAME_PATTERN.test(serverName)) {
        this.problems.push(`${name} entries must look like name=postgres://user:password@host:port; "${serverName || entry.slice(0, 20)}" is not a valid server name (lowercase letters, digits, _ and -, starting with a letter)`)
        continue
      }
      if (serverName in servers) {
        this.problems.push(`${name} names server "${serverName}" twice`)
        continue
      }
      const problem = postgresUrlProblem(url)
      if (problem !== null) {
        this.problems.push(`${name}: server "${serverName}" ${problem}`)
        continue
      }
      servers[serverName] = url
    }
    if (Object.keys(servers).length === 0 && !this.problems.some((p) => p.startsWith(name))) {
      this.problems.push(`${name} is set but names no server`)
    }
    return servers
  }
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])

function isProxyAddress (entry: string): boolean {
  if (PROXY_NAMES.has(entry)) return true
  const [address = '', bits, ...rest] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return false
  if (bits === undefined) return true
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)
}

function postgresUrlProblem (raw: string): string | null {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'must be a URL like postgres://user:password@host:5432/database (could not parse it)'
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return `must start with postgres:// or postgresql:// (got "${url.protocol}//")`
  }
  if (url.hostname === '') return 'must name a host'
  return null
}
