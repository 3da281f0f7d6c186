import type { FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Knex } from 'knex'
import { SchoolMoving, SchoolNotAllowed, SchoolSuspended, SchoolUnknown } from '../errors.js'
import { listenForSchoolChanges } from './catalog-listener.js'
import { classifyDatabaseError, databaseFailureError, isWriteRefused } from './database-errors.js'
import type { SchoolResolver, TenancyOptions } from './options.js'
import { createPoolLender, openTenantPools } from './pool-lender.js'
import { createSchoolDirectory, type SchoolDirectory } from './school-directory.js'
import type { TenantPools } from './tenant-pools.js'
import { chooseSchool } from './token.js'

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

export default fp<TenancyOptions>(async (app, options) => {
  const directory = createSchoolDirectory({ catalog: app.catalog, ttlMs: options.catalogCacheTtlMs })
  const pools = await openTenantPools(options, app.log)
  const lender = createPoolLender(pools, options)

  app.decorateRequest('school', null)
  app.decorateRequest('db', null as unknown as Knex)
  app.decorateRequest('identity', null)

  const resolveSchool: SchoolResolver = options.resolveSchool ?? ((request, claims) => chooseSchool(claims, request.headers['x-school'], options.jwt))
  const authenticate: onRequestHookHandler = async (request, reply) => {
    const claims = await app.tokens.verifyRequest(request)
    const choice = resolveSchool(request, claims)
    if (!choice.allowed.includes(choice.slug)) throw new SchoolNotAllowed(choice.slug)
    const school = await directory.resolve(choice.slug)
    if (school === null) throw new SchoolUnknown(choice.slug)
    if (school.status !== 'active') throw new SchoolSuspended(choice.slug)
    request.identity = { subject: typeof claims.sub === 'string' ? claims.sub : null, allowedSchools: choice.allowed }
    await lender.lend(request, reply, school)
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
        lender.forget(key)
      }
    },
    onResync: () => directory.clear(),
    log: app.log
  })

  app.addHook('onResponse', (request, _reply, done) => {
    lender.release(request)
    done()
  })
  app.addHook('onClose', async () => {
    await listener.close()
    await pools.close()
  })

  app.decorate('tenancy', { authenticate, translateError, directory, pools, listening: listener.ready })
}, { name: 'tenancy', dependencies: ['catalog', 'auth'] })
