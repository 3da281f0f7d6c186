import fp from 'fastify-plugin'
import { Registry } from 'prom-client'
import { processMetrics } from './process-metrics.js'
import { observeRequestDurations } from './request-duration.js'
import { registerServiceCollectors, type ServiceFigures } from './service-collectors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's prom-client registry (the process metrics have their own). */
    metrics: Registry
  }
}

/**
 * GET /metrics in Prometheus text: prom-client's process metrics, the
 * request-duration histogram, and the pool, budget, catalog and
 * public-menu figures. One registry per app, never prom-client's global
 * one: tests build many apps in one process.
 */
export default fp(async (app) => {
  const registry = new Registry()
  let scraped: ServiceFigures | null = null
  const read = (): ServiceFigures => ({
    pools: app.tenancy.pools.stats(),
    directory: app.tenancy.directory.stats(),
    publicMenus: app.publicMenus.stats()
  })
  registerServiceCollectors(registry, () => scraped ?? read())
  observeRequestDurations(app, registry)
  const processRegistry = processMetrics()
  app.decorate('metrics', registry)

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    // One reading of the pools per scrape, shared by every collector.
    scraped = read()
    try {
      const text = await processRegistry.metrics() + await registry.metrics()
      return await reply.type(registry.contentType).send(text)
    } finally {
      scraped = null
    }
  })
}, { name: 'metrics', dependencies: ['tenancy', 'public-menus'] })
