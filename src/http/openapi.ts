import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import type { TSchema } from 'typebox'
import { helmetHeaders } from '../security-headers.js'
import { httpSchemas } from './schemas.js'

export interface OpenApiOptions {
  /** The schemas routes refer to by $id, besides the API's own (Error). */
  appSchemas: TSchema[]
  /** DOCS_UI: Swagger UI at /docs. */
  ui: boolean
}

/*
 * What the Swagger UI page needs, and nothing more: its scripts and styles
 * from this server (the package's files, never a CDN), the icons its CSS
 * holds as data: images, and fetch() to this origin for the document and
 * for "Try it out". No inline script or style, no plugin, no framing, no
 * form posts.
 */
const DOCS_PAGE_CSP = helmetHeaders({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"]
    }
  }
})['content-security-policy'] ?? ''

// The page itself; its assets, the document and every other route keep the deny-all policy.
const DOCS_PAGES = new Set(['/docs', '/docs/'])

/**
 * The OpenAPI document, generated from the route schemas: registered
 * before any route so that every route is seen, with the schemas routes
 * refer to by $id listed once under their names. GET /docs/json serves it,
 * and with `ui` /docs shows it in Swagger UI.
 */
export async function registerOpenApi (app: FastifyInstance, { appSchemas, ui }: OpenApiOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: { title: 'School lunch API', version: '1' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } }
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` }
  })
  for (const schema of [...httpSchemas, ...appSchemas]) app.addSchema(schema)
  if (ui) await app.register(swaggerUiScope)
  else app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger())
}

/** Swagger UI and its files at /docs (and the document at /docs/json), the page under its own CSP. */
async function swaggerUiScope (scope: FastifyInstance): Promise<void> {
  scope.addHook('onSend', (request, reply, payload, done) => {
    if (DOCS_PAGES.has(request.routeOptions.url ?? '')) void reply.header('content-security-policy', DOCS_PAGE_CSP)
    done(null, payload)
  })
  await scope.register(swaggerUi, {
    routePrefix: '/docs',
    theme: { title: 'School lunch API' },
    // Without the top bar: it holds a box for another document's URL, which
    // this page has no use for, and a logo with an inline <style> the CSP refuses.
    uiConfig: { layout: 'BaseLayout' }
  })
}
