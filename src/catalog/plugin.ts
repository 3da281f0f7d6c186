import fp from 'fastify-plugin'
import type { Knex } from 'knex'
import { openCatalog } from './catalog.js'

declare module 'fastify' {
  interface FastifyInstance {
    catalog: Knex
  }
}

export interface CatalogPluginOptions {
  catalogUrl: string
  poolSize: number
}

/** The catalog connection pool, open for the app's lifetime. */
export default fp<CatalogPluginOptions>(async (app, options) => {
  const catalog = openCatalog(options.catalogUrl, options.poolSize)
  app.decorate('catalog', catalog)
  app.addHook('onClose', async () => {
    await catalog.destroy()
  })
}, { name: 'catalog' })
