import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { School } from '../catalog/schools.js'
import { SchoolDatabaseUnavailable } from '../errors.js'
import { openConnection } from '../postgres/connection.js'
import { appMigrations } from '../postgres/migrations.js'
import { isSafeName, RESERVED_DATABASES } from '../postgres/names.js'
import { roleKeyId, schoolRoleUrl, schoolStartup } from '../postgres/roles.js'
import { checkBudgets, DEFAULT_BUDGET } from './connection-budget.js'
import { classifyDatabaseError, databaseFailureError, isLastingFailure, isLoginRefused, SchemaBehind, type DatabaseFailure } from './database-errors.js'
import type { TenancyOptions } from './options.js'
import { createTenantPools, type TenantLease, type TenantPools } from './tenant-pools.js'

/**
 * The school pools of this process, each server's connection budget
 * checked first: refuses to start when a budget cannot fit its server
 * (BudgetTooLarge).
 */
export async function openTenantPools (options: TenancyOptions, log: FastifyBaseLogger): Promise<TenantPools> {
  // A pool is handed out only for a database at the app's latest migration,
  // so an unmigrated school gets a clear 503 instead of failing queries.
  const latestMigration = (await appMigrations.names()).at(-1)
  const budgets = await checkBudgets({
    servers: options.servers,
    pooled: { poolers: options.poolers ?? {}, roleSecret: options.roleSecret },
    setting: options.tenantConnectionsMax,
    catalogUrl: options.catalogUrl,
    catalogPoolSize: options.catalogPoolSize,
    migrateConcurrency: options.migrateConcurrency,
    log
  })
  return createTenantPools({
    budgetOf: (server) => budgets.get(server) ?? DEFAULT_BUDGET,
    poolSize: options.tenantPoolSize,
    idleTimeoutMs: options.tenantIdleTimeoutMs,
    connectConcurrency: options.tenantConnectConcurrency,
    connect: async (target) => await openConnection(target.url, {
      applicationName: 'school-lunch:api',
      connectTimeoutMillis: 1_500,
      ...schoolStartup(options.poolers?.[target.server] !== undefined)
    }),
    // One round trip: this runs on a brand-new connection, in the latency of
    // the request that had to open the pool. Without a knex_migrations table
    // the query fails with undefined_table, which classifyDatabaseError
    // already reads as not migrated.
    prepare: async (db) => {
      if (latestMigration === undefined) return
      const { rows } = await db.raw<{ rows: Array<{ applied: boolean }> }>(
        'SELECT EXISTS (SELECT 1 FROM knex_migrations WHERE name = ?) AS applied', [latestMigration])
      if (rows[0]?.applied !== true) throw new SchemaBehind(latestMigration)
    }
  })
}

export interface PoolLender {
  /** Leases the school's pool to the request (request.db) until its response is done. */
  lend: (request: FastifyRequest, reply: FastifyReply, school: School) => Promise<void>
  /** onResponse: gives the request's lease back, if it has one. */
  release: (request: FastifyRequest) => void
  /** Tries a database again at once, whatever failed before (the catalog says it changed). */
  forget: (key: string) => void
}

const LEASE = Symbol('tenantLease')
interface Leased { [LEASE]?: TenantLease }

/**
 * Lends pools to requests, as the school's own role, and remembers a
 * database that failed to connect for `unavailableForMs`.
 */
export function createPoolLender (pools: TenantPools, options: Pick<TenancyOptions, 'servers' | 'poolers' | 'roleSecret' | 'unavailableForMs'>): PoolLender {
  const unavailable = new Map<string, { until: number, failure: DatabaseFailure }>()
  const keyId = roleKeyId(options.roleSecret)

  async function lendPool (request: FastifyRequest, reply: FastifyReply, school: School): Promise<void> {
    // The catalog refuses such names too; checked again before we connect.
    if (!isSafeName(school.databaseName) || RESERVED_DATABASES.has(school.databaseName)) {
      request.log.error({ school: school.slug }, 'the catalog holds an unusable database name for this school')
      throw new SchoolDatabaseUnavailable(school.slug)
    }
    // Through the server's pooler, when it has one.
    const serverUrl = options.poolers?.[school.server] ?? options.servers[school.server]
    if (serverUrl === undefined) {
      request.log.error({ school: school.slug, server: school.server }, 'school names a server that is not configured')
      throw new SchoolDatabaseUnavailable(school.slug)
    }
    const key = `${school.server}/${school.databaseName}`
    const down = unavailable.get(key)
    if (down !== undefined) {
      if (down.until > Date.now()) throw databaseFailureError(down.failure, school.slug)
      unavailable.delete(key)
    }
    let lease: TenantLease
    try {
      // As the school's own role: a wrong database would refuse the login.
      // The URL (an HMAC and a URL parse) is only worked out when a pool is made.
      const { databaseName } = school
      lease = await pools.acquire({ key, server: school.server, get url () { return schoolRoleUrl(serverUrl, databaseName, options.roleSecret) } })
    } catch (error) {
      let failure = classifyDatabaseError(error)
      if (failure === null) throw error
      if (isLoginRefused(error)) {
        // No role yet means migrate never finished for this school. A role
        // set by another secret means this process has the wrong one.
        if (school.roleKeyId === null) failure = 'not-migrated'
        else if (school.roleKeyId !== keyId) request.log.error({ school: school.slug }, 'TENANT_ROLE_SECRET differs from the one migrate used')
      }
      if (isLastingFailure(failure)) unavailable.set(key, { until: Date.now() + (options.unavailableForMs ?? 1_000), failure })
      throw databaseFailureError(failure, school.slug)
    }
    const leased = request as FastifyRequest & Leased
    leased[LEASE] = lease
    // Released when the response is done or the client goes away, whichever first.
    reply.raw.once('close', lease.release)
    request.db = lease.db
    request.school = { id: school.id, slug: school.slug, name: school.name }
  }

  return {
    lend: lendPool,
    release: (request) => { (request as FastifyRequest & Leased)[LEASE]?.release() },
    forget: (key) => { unavailable.delete(key) }
  }
}
