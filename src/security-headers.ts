import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * Helmet's headers, worked out once. For a JSON API they never depend on
 * the request (no CSP nonces), so running helmet's dozen middlewares per
 * request, as @fastify/helmet does in two async hooks, cost CPU on every
 * request and bought nothing (docs/performance.md, "Why targets are missed").
 */
export function helmetHeaders (options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader: (name: string, value: unknown) => { headers[name.toLowerCase()] = String(value) },
    removeHeader: (name: string) => { delete headers[name.toLowerCase()] }
  }
  let finished = false
  let failure: unknown
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, (error?: unknown) => { finished = true; failure = error })
  if (!finished) throw new Error('helmet did not finish synchronously; its headers cannot be computed once')
  if (failure !== undefined) throw failure
  return headers
}

/** Sets the same security headers on every reply, errors and 404s included. */
export default fp<HelmetOptions>(async (app, options) => {
  const headers = helmetHeaders(options)
  app.addHook('onRequest', (_request, reply, done) => {
    void reply.headers(headers)
    done()
  })
}, { name: 'security-headers' })
