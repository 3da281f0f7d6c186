import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { CatalogUnavailable, ShuttingDown } from './errors.js'

const READY_TIMEOUT_MS = 2_000

const Status = Type.Object({ status: Type.Optional(Type.String()) })

/**
 * /health: the process answers. /ready: the catalog answers too, and the
 * process is not shutting down (drain.ts), so the load balancer moves on
 * while this process still answers what reaches it.
 */
export default fp(async (app) => {
  app.get('/health', { schema: { response: { 200: Status } } }, async () => ({ status: 'ok' }))

  app.get('/ready', { schema: { response: { 200: Status } } }, async () => {
    if (app.drain.active) throw new ShuttingDown()
    try {
      await app.catalog.raw('SELECT 1').timeout(READY_TIMEOUT_MS, { cancel: true })
    } catch {
      throw new CatalogUnavailable()
    }
    return { status: 'ready' }
  })
}, { name: 'health', dependencies: ['catalog', 'drain'] })
