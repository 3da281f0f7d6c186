import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { CatalogUnavailable } from './errors.js'

const READY_TIMEOUT_MS = 2_000

const Status = Type.Object({ status: Type.Optional(Type.String()) })

/** /health: the process answers. /ready: the catalog answers too. */
export default fp(async (app) => {
  app.get('/health', { schema: { response: { 200: Status } } }, async () => ({ status: 'ok' }))

  app.get('/ready', { schema: { response: { 200: Status } } }, async () => {
    try {
      await app.catalog.raw('SELECT 1').timeout(READY_TIMEOUT_MS, { cancel: true })
    } catch {
      throw new CatalogUnavailable()
    }
    return { status: 'ready' }
  })
}, { name: 'health', dependencies: ['catalog'] })
