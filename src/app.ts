import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import type { Config } from './config.js'
import catalogPlugin from './catalog/plugin.js'
import health from './health.js'

export interface AppOptions {
  config: Config
  catalogUrl: string
  /** Fastify logger setting; tests pass false. */
  logger?: boolean | object
}

/** Builds the service; never listens (server.ts does, tests inject). */
export async function buildApp ({ config, catalogUrl, logger }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: logger ?? {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers.cookie']
    },
    bodyLimit: 64 * 1024,
    // Slugs are case-sensitive identifiers; never treat /API and /api alike.
    routerOptions: { caseSensitive: true }
  })

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const statusCode = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500
    if (statusCode >= 500) {
      request.log.error({ err: error }, 'request failed')
    }
    void reply.status(statusCode).send({
      statusCode,
      code: statusCode === 500 && error.code === undefined ? 'INTERNAL_ERROR' : error.code ?? 'INTERNAL_ERROR',
      error: httpReason(statusCode),
      // A 500 means a bug; its message may hold internals, so it stays in the log.
      message: statusCode === 500 ? 'Internal server error' : error.message
    })
  })

  await app.register(catalogPlugin, { catalogUrl, poolSize: config.catalogPoolSize })
  await app.register(health)
  return app
}

function httpReason (statusCode: number): string {
  const reasons: Record<number, string> = {
    400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict',
    413: 'Payload Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable'
  }
  return reasons[statusCode] ?? 'Error'
}
