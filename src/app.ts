import cors from '@fastify/cors'
import etag from '@fastify/etag'
import rateLimit from '@fastify/rate-limit'
import Fastify, { LogController, type FastifyInstance, type FastifyRequest } from 'fastify'
import auth from './auth/plugin.js'
import catalogPlugin from './catalog/plugin.js'
import type { Config } from './config.js'
import { AddressRateLimited, RateLimited } from './errors.js'
import health from './health.js'
import drain from './http/drain.js'
import { handleErrors } from './http/error-handler.js'
import { registerOpenApi } from './http/openapi.js'
import publicMenus, { type PublicMenusOptions } from './lunch/public-plugin.js'
import { publicLunchRoutes } from './lunch/public-routes.js'
import { lunchRoutes } from './lunch/routes.js'
import { lunchSchemas } from './lunch/schemas.js'
import metrics from './metrics/plugin.js'
import securityHeaders from './security-headers.js'
import type { TenancyOptions } from './tenancy/options.js'
import tenancy from './tenancy/plugin.js'
import { identityRoutes } from './tenancy/routes.js'

export interface AppOptions {
  config: Config
  catalogUrl: string
  /** Tenant server name → URL. */
  servers: Record<string, string>
  /** Fastify logger setting; tests pass false or their own. */
  logger?: boolean | object
  /** Tenancy options that are code, not configuration: another school resolver, or windows that tests shorten. */
  tenancy?: Pick<TenancyOptions, 'unavailableForMs' | 'resolveSchool'>
  /** The clock of the token key set's cooldown and cache age; tests pass their own. */
  clock?: () => number
  /** The public copies' repair timings; tests shorten them or turn the timer off. */
  publicMenus?: Pick<PublicMenusOptions, 'repairAfterMs' | 'repairIntervalMs' | 'staleAfterMs'>
}

const BODY_LIMIT_BYTES = 16 * 1024

/** Builds the service; never listens (server.ts does, tests inject). */
export async function buildApp (options: AppOptions): Promise<FastifyInstance> {
  const app = createFastify(options.config, options.logger)
  handleErrors(app, (error, request) => app.tenancy.translateError(error, request))
  await app.register(drain)
  logRequests(app)
  await registerBrowserRules(app, options.config)
  await registerOpenApi(app, { appSchemas: lunchSchemas, ui: options.config.docsUi })
  await registerServices(app, options)
  await app.register(async (scope) => { await staffApi(scope, options.config) }, { prefix: '/api' })
  await app.register(async (scope) => { await publicApi(scope, options.config) }, { prefix: '/api/public' })
  return app
}

function createFastify (config: Config, logger: AppOptions['logger']): FastifyInstance {
  const app = Fastify({
    logger: logger ?? { level: config.logLevel },
    // Whose X-Forwarded-For sets request.ip, which the public rate limit counts by.
    trustProxy: config.trustProxy,
    // One line per request, written in onResponse below once the school is
    // known, instead of Fastify's two lines of which the first cannot have it.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { caseSensitive: true, ignoreTrailingSlash: false },
    ajv: {
      // Reject rather than repair: no type coercion, no silent dropping of
      // unknown properties (the schemas forbid them).
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false }
    }
  })
  // JSON only: a text/plain body (what fetch() sends for a bare string) must
  // be a 415 that says so, not a schema error about its shape.
  app.removeContentTypeParser('text/plain')
  return app
}

function logRequests (app: FastifyInstance): void {
  app.addHook('onResponse', (request, reply, done) => {
    // The school is a field of the line rather than of a child logger: a
    // child per request showed in the profile under load.
    if (infoEnabled(request)) {
      request.log.info({
        school: request.school?.slug,
        method: request.method,
        path: request.url.split('?')[0],
        statusCode: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10
      }, 'request')
    }
    done()
  })
}

/** Security headers on every reply, and CORS for the configured origins. */
async function registerBrowserRules (app: FastifyInstance, config: Config): Promise<void> {
  // A JSON API: no content may load anything, nothing may frame it.
  await app.register(securityHeaders, {
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    referrerPolicy: { policy: 'no-referrer' }
  })
  // No CORS_ORIGINS, no cross-origin access: browsers refuse a response
  // without Access-Control-Allow-Origin, so the plugin would only cost time.
  if (config.corsOrigins.length === 0) return
  await app.register(cors, {
    origin: config.corsOrigins,
    methods: ['GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-School', 'If-None-Match'],
    exposedHeaders: ['ETag', 'Retry-After'],
    maxAge: 600
  })
}

/** The catalog, token verification, tenancy, the public menus and what reports on them. */
async function registerServices (app: FastifyInstance, { config, catalogUrl, servers, clock, tenancy: tenancyOptions, publicMenus: publicTimings }: AppOptions): Promise<void> {
  await app.register(catalogPlugin, { catalogUrl, poolSize: config.catalogPoolSize })
  await app.register(health)
  await app.register(auth, { jwt: config.jwt, ...(clock === undefined ? {} : { clock }) })
  await app.register(tenancy, {
    jwt: config.jwt,
    catalogUrl,
    servers,
    poolers: config.tenantPoolers ?? {},
    catalogCacheTtlMs: config.catalogCacheTtlMs,
    tenantPoolSize: config.tenantPoolSize,
    tenantConnectionsMax: config.tenantConnectionsMax,
    tenantIdleTimeoutMs: config.tenantIdleTimeoutMs,
    tenantConnectConcurrency: config.tenantConnectConcurrency,
    catalogPoolSize: config.catalogPoolSize,
    migrateConcurrency: config.migrateConcurrency,
    roleSecret: config.tenantRoleSecret,
    ...tenancyOptions
  })
  await app.register(publicMenus, { servers, poolers: config.tenantPoolers ?? {}, roleSecret: config.tenantRoleSecret, windowYears: config.publicWeekWindowYears, ...publicTimings })
  if (config.metrics) await app.register(metrics)
}

/** /api: token → school → pool on every request, never cached, rate limited per school. */
async function staffApi (api: FastifyInstance, config: Config): Promise<void> {
  api.addHook('onRequest', api.tenancy.authenticate)
  // Staff data is per user and school: never stored by a shared cache.
  api.addHook('onSend', (_request, reply, payload, done) => {
    if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store')
    done(null, payload)
  })
  await registerSchoolRateLimit(api, config)
  await api.register(identityRoutes)
  await api.register(lunchRoutes)
}

/** /api/public: no token, rate limited per client address, ETags for revalidation. */
async function publicApi (scope: FastifyInstance, config: Config): Promise<void> {
  await registerAddressRateLimit(scope, config)
  await scope.register(etag)
  await scope.register(publicLunchRoutes)
}

/**
 * Per-school rate limit, counted after the school is known (preHandler), so
 * one noisy school runs out of its own budget and no one else's. Counters
 * live in this process; several API processes each allow the limit.
 */
async function registerSchoolRateLimit (scope: FastifyInstance, config: Config): Promise<void> {
  if (config.rateLimitMax === 0) return
  await scope.register(rateLimit, {
    max: config.rateLimitMax,
    timeWindow: config.rateLimitWindowMs,
    hook: 'preHandler',
    keyGenerator: (request) => request.school?.slug ?? `ip:${request.ip}`,
    errorResponseBuilder: (_request, context) => new RateLimited(context.after)
  })
}

/**
 * Per client address on the public routes, counted before anything else
 * (onRequest), so a refused request costs no lookup. Keyed by request.ip
 * (IPv6 by /64, the plugin's default): set TRUST_PROXY behind a load
 * balancer, or every client shares the balancer's address and budget.
 */
async function registerAddressRateLimit (scope: FastifyInstance, config: Config): Promise<void> {
  if (config.publicRateLimitMax === 0) return
  await scope.register(rateLimit, {
    max: config.publicRateLimitMax,
    timeWindow: config.publicRateLimitWindowMs,
    onExceeded: () => { scope.publicMenus.refused('rate_limited') },
    errorResponseBuilder: (_request, context) => new AddressRateLimited(context.after)
  })
}

/** pino can say whether info lines are written; other loggers are asked to write. */
function infoEnabled (request: FastifyRequest): boolean {
  return (request.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') !== false
}
