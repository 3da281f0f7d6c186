import { randomBytes } from 'node:crypto'
import type { Knex } from 'knex'
import { createDevSigner } from '../../src/cli/dev-signer.js'
import { createKnex, databaseUrl } from '../../src/postgres/connection.js'
import { dropPrefixedDatabases } from '../../src/postgres/admin.js'
import { schoolRoleUrl } from '../../src/postgres/roles.js'
import type { DatabaseServers } from './database-server.js'
import { catalogWithSchools, databaseOf, runMigrate, seedWeeks, serverIndexOf, slugOf, type MigrateRun } from './fleet.js'
import { measure, WEEK_PATH, type Measured, type MeasureOptions, type NextRequest } from './measure.js'
import { sampleMigrateConnections } from './migrate-phases.js'
import type { BenchOptions } from './options.js'
import { startServer, type RunningServer } from './processes.js'
import { elapsed, say } from './report.js'

/** The budget of the churn regime (B, and E's second curve): fewer connections than schools. */
export const CHURN_BUDGET = 200

/** One of the bench's PostgreSQL servers, by the name TENANT_SERVERS gives it. */
export interface BenchServer { name: string, url: string }

/** What every scenario gets: the fleet, its servers, tokens and the measuring run. */
export interface Bench {
  options: BenchOptions
  /** The first server, which holds the catalogs: `default` in TENANT_SERVERS. */
  serverUrl: string
  /** Every server; the fleet's schools are dealt to them in turn. */
  servers: BenchServer[]
  /** An admin connection to the first server. */
  admin: Knex
  /** Schools of the main fleet: --schools when a scenario needs them all, else at most 50. */
  fleetSize: number
  mainCatalog: string
  /** The creation of the main fleet, which is also scenario C's first row. */
  created: MigrateRun
  /** The most connections migrate held on each server while it created the fleet. */
  createdPeaks: number[]
  baseline: RunningServer
  /** Slug of school number n (from 1) of the main fleet. */
  /** TENANT_ROLE_SECRET of every service and migrate child: PgBouncer's auth file derives from it. */
  roleSecret: string
  slug: (n: number) => string
  /** The server of school number n. */
  serverOf: (n: number) => BenchServer
  /** URL of school number n's database, logged in as its own role. */
  schoolUrl: (n: number) => string
  tokenFor: (slug: string) => string
  /** Environment of a service or migrate child on `catalogUrl`. */
  envFor: (catalogUrl: string, extra?: Record<string, string>) => Record<string, string>
  /** The real service on the main fleet, in a process of its own. */
  startService: (extra?: Record<string, string>) => Promise<RunningServer>
  /** One warmed-up measured run; see measure(). */
  measure: (url: string, next: NextRequest, options?: Omit<MeasureOptions, 'connections' | 'durationSeconds'>) => Promise<Measured>
  measureBaseline: () => Promise<Measured>
}

export interface BenchSetup {
  bench: Bench
  /** Stops the servers started and drops what was made on a configured server. */
  close: () => Promise<void>
}

/** Schools of the main fleet: --schools when a scenario needs them all, else at most 50. */
export function fleetSizeOf (options: BenchOptions, needsFleet: boolean): number {
  return needsFleet ? options.schools : Math.min(50, options.schools)
}

/** The first server is `default`, so schools inserted without a server land there. */
function nameServers (urls: readonly string[]): BenchServer[] {
  return urls.map((url, i) => ({ name: i === 0 ? 'default' : `pg${i + 1}`, url }))
}

interface FleetPlan {
  prefix: string
  fleetSize: number
  servers: BenchServer[]
  serverOf: (n: number) => BenchServer
  /** Of a migrate child on the fleet's catalog. */
  env: Record<string, string>
  catalogUrl: string
}

/**
 * The main fleet: its catalog, its databases made by one timed migrate run
 * (migrate's connections on each server sampled meanwhile), and a week of
 * five days in each school.
 */
async function createFleet ({ prefix, fleetSize, servers, serverOf, env, catalogUrl }: FleetPlan): Promise<{ created: MigrateRun, createdPeaks: number[] }> {
  say(`${elapsed()} Preparing ${fleetSize} schools${servers.length > 1 ? ` on ${servers.length} servers` : ''}…`)
  await catalogWithSchools(catalogUrl, prefix, fleetSize, servers.map((s) => s.name))
  const sampler = sampleMigrateConnections(servers.map((s) => s.url))
  const created = await runMigrate(env)
  const createdPeaks = await sampler.stop()
  if (created.code !== 0) throw new Error(`migrate failed: ${created.summary}`)
  say(`${elapsed()} Created and migrated in ${created.seconds.toFixed(1)} s. Seeding a week of five days in each school…`)
  await seedWeeks(Array.from({ length: fleetSize }, (_, i) => ({ serverUrl: serverOf(i + 1).url, database: databaseOf(prefix, i + 1) })), 8)
  return { created, createdPeaks }
}

/** Creates, migrates and seeds the main fleet and starts the baseline server. */
export async function prepareBench (options: BenchOptions, databaseServers: DatabaseServers, needsFleet: boolean): Promise<BenchSetup> {
  const { prefix } = options
  const servers = nameServers(databaseServers.urls)
  const server = { url: databaseServers.urls[0] ?? '', external: databaseServers.external }
  const admin = createKnex(server.url, { max: 2, applicationName: 'school-lunch:bench' })
  const processes: RunningServer[] = []
  const close = async (): Promise<void> => {
    for (const running of processes) await running.stop().catch(() => {})
    if (server.external) await dropPrefixedDatabases(admin, prefix).catch(() => {})
    await admin.destroy()
  }
  try {
    const jwtSecret = randomBytes(24).toString('hex')
    const roleSecret = randomBytes(24).toString('hex')
    const envFor = (catalogUrl: string, extra: Record<string, string> = {}): Record<string, string> => ({
      DATABASE_URL: catalogUrl,
      TENANT_SERVERS: servers.map(({ name, url }) => `${name}=${url}`).join(','),
      JWT_SECRET: jwtSecret,
      TENANT_ROLE_SECRET: roleSecret,
      NODE_ENV: 'development',
      ...extra
    })
    if (server.external) await dropPrefixedDatabases(admin, prefix)
    const fleetSize = fleetSizeOf(options, needsFleet)
    const mainCatalog = databaseUrl(server.url, `${prefix}_catalog`)
    const serverOf = (n: number): BenchServer => servers[serverIndexOf(n, servers.length)] as BenchServer
    const { created, createdPeaks } = await createFleet({ prefix, fleetSize, servers, serverOf, env: envFor(mainCatalog), catalogUrl: mainCatalog })

    const start = async (mode: 'service' | 'baseline', env: Record<string, string>): Promise<RunningServer> => {
      const running = await startServer(mode, env)
      processes.push(running)
      return running
    }
    const baseline = await start('baseline', { ...envFor(mainCatalog), BASELINE_DATABASE_URL: schoolRoleUrl(serverOf(1).url, databaseOf(prefix, 1), roleSecret) })
    const sign = await createDevSigner({ secret: jwtSecret, expiresInMs: 3_600_000 })
    const tokens = new Map<string, string>()
    const measureOn: Bench['measure'] = async (url, next, flags = {}) =>
      await measure(url, next, { connections: options.connections, durationSeconds: options.duration, ...flags })
    const bench: Bench = {
      options,
      serverUrl: server.url,
      servers,
      admin,
      fleetSize,
      mainCatalog,
      created,
      createdPeaks,
      baseline,
      roleSecret,
      slug: (n) => slugOf(prefix, n),
      serverOf,
      schoolUrl: (n) => schoolRoleUrl(serverOf(n).url, databaseOf(prefix, n), roleSecret),
      tokenFor: (slug) => {
        let token = tokens.get(slug)
        if (token === undefined) tokens.set(slug, token = sign({ sub: 'bench', school: slug }))
        return token
      },
      envFor,
      startService: async (extra = {}) => await start('service', envFor(mainCatalog, extra)),
      measure: measureOn,
      measureBaseline: async () => await measureOn(baseline.url, () => ({ path: WEEK_PATH, headers: {} }))
    }
    return { bench, close }
  } catch (error) {
    await close()
    throw error
  }
}
