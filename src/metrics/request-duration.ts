import type { FastifyInstance } from 'fastify'
import { Histogram, type Registry } from 'prom-client'

/** The route label of requests that matched no route: one series, whatever the URL. */
export const UNMATCHED_ROUTE = 'unmatched'

// From 1 ms (a cached public read) to 10 s (past every timeout of the service).
const BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * http_request_duration_seconds for every answer, by route pattern (never
 * the URL, which holds ids and slugs), method and status class: a bounded
 * set of series, however many schools and weeks there are.
 */
export function observeRequestDurations (app: FastifyInstance, registry: Registry): void {
  const histogram = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from the request\'s arrival to its answer, by route pattern, method and status class.',
    labelNames: ['route', 'method', 'status_class'],
    buckets: BUCKETS_SECONDS,
    registers: [registry]
  })
  // A callback hook, not an async one: a promise per request per hook showed in the profile.
  app.addHook('onResponse', (request, reply, done) => {
    histogram.observe({
      route: request.routeOptions.url ?? UNMATCHED_ROUTE,
      method: request.method,
      status_class: `${Math.floor(reply.statusCode / 100)}xx`
    }, reply.elapsedTime / 1000)
    done()
  })
}
