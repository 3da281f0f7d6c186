import fp from 'fastify-plugin'
import { CatalogUnavailable } from './errors.js'

const READY_TIMEOUT_MS = 2_000

/** /health: the process answers. /ready: the catalog answers too. */
export default fp(async (app) => {
  app.get('/health', {
    schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } }
  }, async () => ({ status: 'ok' }))

  app.get('/ready', {
    schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } }
  }, async () => {
    try {
      await app.catalog.raw('SELECT 1').timeout(READY_TIMEOUT_MS, { cancel: true })
    } catch {
      throw new CatalogUnavailable()
    }
    return { status: 'ready' }
  })
}, { name: 'health', dependencies: ['catalog'] })
