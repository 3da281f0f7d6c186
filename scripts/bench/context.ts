import { randomBytes } from 'node:crypto'
import type { Knex } from 'knex'
import { createDevSigner } from '../../src/cli/dev-signer.js'
import { createKnex, databaseUrl } from '../../src/postgres/connection.js'
import { dropPrefixedDatabases } from '../../src/postgres/admin.js'
import { schoolRoleUrl } from '../../src/postgres/roles.js'
import type { DatabaseServer } from './database-server.js'
import { catalogWithSchools, databaseOf, runMigrate, seedWeeks, slugOf, type MigrateRun } from './fleet.js'
import { measure, WEEK_PATH, type Measured, type MeasureOptions, type NextRequest } from './measure.js'
import type { BenchOptions } from './options.js'
import { startServer, type RunningServer } from './processes.js'
import { elapsed, say } from './report.js'

/** The budget of the churn regime (B, and E's second curve): fewer connections than schools. */
export const CHURN_BUDGET = 200

/** What every scenario gets: the fleet, its servers, tokens and the measuring run. */
export interface Bench {
  options: BenchOptions
  serverUrl: string
  admin: Knex
  /** Schools of the main fleet: --schools when a scenario needs them all, else at most 50. */
  fleetSize: number
  mainCatalog: string
  /** The creation of the main fleet, which is also scenario C's first row. */
  created: MigrateRun
  baseline: RunningServer
  /** Slug of school number n (from 1) of the main fleet. */
  /** TENANT_ROLE_SECRET of every service and migrate child: PgBouncer's auth file derives from it. */
  roleSecret: string
  slug: (n: number) => string
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

/** Creates, migrates and seeds the main fleet and starts the baseline server. */
export async function prepareBench (options: BenchOptions, server: DatabaseServer, needsFleet: boolean): Promise<BenchSetup> {
  const { prefix } = options
  const admin = createKnex(server.url, { max: 2, applicationName: 'school-lunch:bench' })
  const servers: RunningServer[] = []
  const close = async (): Promise<void> => {
    for (const running of servers) await running.stop().catch(() => {})
    if (server.external) await dropPrefixedDatabases(admin, prefix).catch(() => {})
    await admin.destroy()
  }
  try {
    const jwtSecret = randomBytes(24).toString('hex')
    const roleSecret = randomBytes(24).toString('hex')
    const envFor = (catalogUrl: string, extra: Record<string, string> = {}): Record<string, string> => ({
      DATABASE_URL: catalogUrl,
      TENANT_SERVERS: `default=${server.url}`,
      JWT_SECRET: jwtSecret,
      TENANT_ROLE_SECRET: roleSecret,
      NODE_ENV: 'development',
      ...extra
    })
    if (server.external) await dropPrefixedDatabases(admin, prefix)
    const fleetSize = needsFleet ? options.schools : Math.min(50, options.schools)
    const mainCatalog = databaseUrl(server.url, `${prefix}_catalog`)
    say(`${elapsed()} Preparing ${fleetSize} schools…`)
    await catalogWithSchools(mainCatalog, prefix, fleetSize)
    const created = await runMigrate(envFor(mainCatalog))
    if (created.code !== 0) throw new Error(`migrate failed: ${created.summary}`)
    say(`${elapsed()} Seeding a week of five days in each school…`)
    await seedWeeks(server.url, Array.from({ length: fleetSize }, (_, i) => databaseOf(prefix, i + 1)), 8)

    const start = async (mode: 'service' | 'baseline', env: Record<string, string>): Promise<RunningServer> => {
      const running = await startServer(mode, env)
      servers.push(running)
      return running
    }
    const baseline = await start('baseline', { ...envFor(mainCatalog), BASELINE_DATABASE_URL: schoolRoleUrl(server.url, databaseOf(prefix, 1), roleSecret) })
    const sign = await createDevSigner({ secret: jwtSecret, expiresInMs: 3_600_000 })
    const tokens = new Map<string, string>()
    const measureOn: Bench['measure'] = async (url, next, flags = {}) =>
      await measure(url, next, { connections: options.connections, durationSeconds: options.duration, ...flags })
    const bench: Bench = {
      options,
      serverUrl: server.url,
      admin,
      fleetSize,
      mainCatalog,
      created,
      baseline,
      roleSecret,
      slug: (n) => slugOf(prefix, n),
      schoolUrl: (n) => schoolRoleUrl(server.url, databaseOf(prefix, n), roleSecret),
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
