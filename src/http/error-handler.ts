import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import {
  BodyTooLarge, InvalidJson, InvalidRequest, RETRY_AFTER_SECONDS, RouteNotFound, UnsupportedMediaType
} from '../errors.js'

/** Fastify's own errors under our stable codes; ours pass through. */
export interface PublicError { statusCode?: number, code?: string, message: string }

/** Maps an error that only a plugin can read, or returns null for the defaults. */
export type TranslateError = (error: unknown, request: FastifyRequest) => PublicError | null

/**
 * One error handler and one not-found handler for the whole app: every
 * error answers `{ statusCode, code, error, message }` with a stable code,
 * and a 5xx never shows its internals. `translate` maps errors that only
 * a plugin can read (a school database's failure) before the defaults.
 */
export function handleErrors (app: FastifyInstance, translate: TranslateError): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const mapped: PublicError = translate(error, request) ?? publicError(error)
    const statusCode = mapped.statusCode ?? 500
    if (statusCode >= 500) request.log.error({ err: error, school: request.school?.slug }, 'request failed')
    if (statusCode === 503) void reply.header('retry-after', String(retryAfterSeconds(mapped)))
    void reply.status(statusCode).send({
      statusCode,
      code: mapped.code ?? 'INTERNAL_ERROR',
      error: httpReason(statusCode),
      // A 500 is a bug; its message may hold internals, so it stays in the log.
      message: statusCode === 500 ? 'Internal server error' : mapped.message
    })
  })
  app.setNotFoundHandler((request) => {
    throw new RouteNotFound(request.method, request.url.split('?')[0] ?? '')
  })
}

function publicError (error: FastifyError): PublicError {
  if (error.validation !== undefined) return new InvalidRequest(error.message)
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return new BodyTooLarge()
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return new UnsupportedMediaType()
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new InvalidJson()
  }
  if (error instanceof SyntaxError && error.statusCode === 400) return new InvalidJson()
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) return error
  if (error.statusCode === 503) return error
  return { statusCode: 500, code: 'INTERNAL_ERROR', message: error.message }
}

/** An error may know better than the default when a retry can succeed (the key set's cooldown). */
function retryAfterSeconds (error: PublicError): number {
  const seconds = (error as { retryAfterSeconds?: unknown }).retryAfterSeconds
  return typeof seconds === 'number' ? seconds : RETRY_AFTER_SECONDS
}

function httpReason (statusCode: number): string {
  const reasons: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    409: 'Conflict',
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    503: 'Service Unavailable'
  }
  return reasons[statusCode] ?? 'Error'
}
