import swagger from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'
import type { TSchema } from 'typebox'
import { httpSchemas } from './schemas.js'

/**
 * The OpenAPI document, generated from the route schemas: registered
 * before any route so that every route is seen, with the schemas routes
 * refer to by $id (the API's and the apps' own), listed once under their
 * names. GET /docs/json serves it.
 */
export async function registerOpenApi (app: FastifyInstance, appSchemas: TSchema[]): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: { title: 'School lunch API', version: '1' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } }
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` }
  })
  for (const schema of [...httpSchemas, ...appSchemas]) app.addSchema(schema)
  app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger())
}
