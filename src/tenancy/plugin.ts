import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Knex } from 'knex'
import type { School } from '../catalog/schools.js'
import type { ConnectionBudgets, JwtConfig } from '../config.js'
import { SchoolDatabaseUnavailable, SchoolMoving, SchoolNotAllowed, SchoolSuspended, SchoolUnknown } from '../errors.js'
import { openConnection } from '../postgres/connection.js'
import { appMigrations } from '../postgres/migrations.js'
import { isSafeName, RESERVED_DATABASES } from '../postgres/names.js'
import { roleKeyId, schoolRoleUrl } from '../postgres/roles.js'
import { classifyDatabaseError, databaseFailureError, isLastingFailure, isLoginRefused, isWriteRefused, SchemaBehind, type DatabaseFailure } from './database-errors.js'
import { listenForSchoolChanges } from './catalog-listener.js'
import { checkBudgets, DEFAULT_BUDGET } from './connection-budget.js'
import { createSchoolDirectory, type SchoolDirectory } from './school-directory.js'
import { createTenantPools, type TenantLease, type TenantPools } from './tenant-pools.js'
import { authorizationValues, bearerToken, chooseSchool, verifyToken, type Claims, type SchoolChoice } from './token.js'

export interface ActiveSchool {
  id: number
  slug: string
  name: string
}

declare module 'fastify' {
  interface FastifyInstance {
    tenancy: Tenancy
  }
  interface FastifyRequest {
    /** The school this request acts for; set by the tenancy hooks, else null. */
    school: ActiveSchool | null
    /** The Knex of that school's database; only under the tenancy hooks. */
    db: Knex
    /** Token subject (`sub`) and every school slug the token allows. */
    identity: { subject: string | null, allowedSchools: string[] } | null
  }
}

export type SchoolResolver = (request: FastifyRequest, claims: Claims) => SchoolChoice

export interface Tenancy {
  /** onRequest hook of the authenticated API: token → school → pool. */
  authenticate: onRequestHookHandler
  /** Maps a failure of a school's database to a 503 error, or returns null. */
  translateError: (error: unknown, request: FastifyRequest) => Error | null
  directory: SchoolDirectory
  pools: TenantPools
  /** Resolves once this process hears the catalog's school_changed notifications. */
  listening: Promise<void>
}

export interface TenancyOptions {
  jwt: JwtConfig
  /** Where school_changed notifications come from. */
  catalogUrl: string
  /** Tenant server name → URL. */
  servers: Record<string, string>
  catalogCacheTtlMs: number
  tenantPoolSize: number
  tenantConnectionsMax: ConnectionBudgets
  tenantIdleTimeoutMs: number
  tenantConnectConcurrency: number
  /** What the start-up check leaves to the catalog and to migrate on each server. */
  catalogPoolSize: number
  migrateConcurrency: number
  /** TENANT_ROLE_SECRET: pools log in as the school's own role with it. */
  roleSecret: string
  /**
   * After a failed connect, a database is not tried again for this long, so
   * a dead server costs its school one fast 503 per request and nobody else
   * a thing. Default 1 s; tests that repair a database set it shorter.
   */
  unavailableForMs?: number
  /**
   * Which school a request acts for, given its verified claims; the claim
   * and X-School rule (chooseSchool) unless another is given. Whatever it
   * returns, a slug the token does not allow is refused.
   */
  resolveSchool?: SchoolResolver
}

const LEASE = Symbol('tenantLease')
interface Leased { [LEASE]?: TenantLease }

export default fp<TenancyOptions>(async (app, options) => {
  const { jwt } = options

  // A pool is handed out only for a database at the app's latest migration,
  // so an unmigrated school gets a clear 503 instead of failing queries.
  const latestMigration = (await appMigrations.names()).at(-1)
  const directory = createSchoolDirectory({ catalog: app.catalog, ttlMs: options.catalogCacheTtlMs })
  // Refuses to start when a budget cannot fit its server (BudgetTooLarge).
  const budgets = await checkBudgets({
    servers: options.servers,
    setting: options.tenantConnectionsMax,
    catalogUrl: options.catalogUrl,
    catalogPoolSize: options.catalogPoolSize,
    migrateConcurrency: options.migrateConcurrency,
    log: app.log
  })
  const pools = createTenantPools({
    budgetOf: (server) => budgets.get(server) ?? DEFAULT_BUDGET,
    poolSize: options.tenantPoolSize,
    idleTimeoutMs: options.tenantIdleTimeoutMs,
    connectConcurrency: options.tenantConnectConcurrency,
    connect: async (target) => await openConnection(target.url, {
      applicationName: 'school-lunch:api',
      connectTimeoutMillis: 1_500,
      statementTimeoutMillis: 15_000
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
  const unavailable = new Map<string, { until: number, failure: DatabaseFailure }>()
  const keyId = roleKeyId(options.roleSecret)

  app.decorateRequest('school', null)
  app.decorateRequest('db', null as unknown as Knex)
  app.decorateRequest('identity', null)

  async function lendPool (request: FastifyRequest, reply: FastifyReply, school: School): Promise<void> {
    // The catalog refuses such names too; checked again before we connect.
    if (!isSafeName(school.databaseName) || RESERVED_DATABASES.has(school.databaseName)) {
      request.log.error({ school: school.slug }, 'the catalog holds an unusable database name for this school')
      throw new SchoolDatabaseUnavailable(school.slug)
    }
    const serverUrl = options.servers[school.server]
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

  const resolveSchool: SchoolResolver = options.resolveSchool ?? ((request, claims) => chooseSchool(claims, request.headers['x-school'], jwt))

  const authenticate: onRequestHookHandler = async (request, reply) => {
    const token = bearerToken(authorizationValues(request.raw.rawHeaders))
    const claims = await verifyToken(app.tokens.verify, token)
    const choice = resolveSchool(request, claims)
    if (!choice.allowed.includes(choice.slug)) throw new SchoolNotAllowed(choice.slug)
    const school = await directory.resolve(choice.slug)
    if (school === null) throw new SchoolUnknown(choice.slug)
    if (school.status !== 'active') throw new SchoolSuspended(choice.slug)
    request.identity = { subject: typeof claims.sub === 'string' ? claims.sub : null, allowedSchools: choice.allowed }
    await lendPool(request, reply, school)
  }

  // A failure inside a route is answered, not remembered: a connection
  // killed under one request must not turn the next one away, and the pool
  // replaces broken connections by itself.
  function translateError (error: unknown, request: FastifyRequest): Error | null {
    if (request.school === null) return null
    if (isWriteRefused(error)) return new SchoolMoving(request.school.slug)
    const failure = classifyDatabaseError(error)
    return failure === null ? null : databaseFailureError(failure, request.school.slug)
  }

  // A suspension, a move or a removal in the catalog reaches this process
  // at once; the cache TTL stays as the fallback if a notification is lost.
  const listener = listenForSchoolChanges(options.catalogUrl, {
    onChange: (change) => {
      for (const slug of change.slugs) directory.invalidate(slug)
      for (const key of change.databases) {
        pools.drop(key)
        unavailable.delete(key)
      }
    },
    onResync: () => directory.clear(),
    log: app.log
  })

  app.addHook('onResponse', (request, _reply, done) => {
    (request as FastifyRequest & Leased)[LEASE]?.release()
    done()
  })
  app.addHook('onClose', async () => {
    await listener.close()
    await pools.close()
  })

  app.decorate('tenancy', { authenticate, translateError, directory, pools, listening: listener.ready })
}, { name: 'tenancy', dependencies: ['catalog', 'auth'] })
