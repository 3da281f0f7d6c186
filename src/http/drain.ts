import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    drain: Drain
  }
}

export interface Drain {
  /** From now on /ready answers 503 and every answer closes its connection; the listener stays open. */
  start: () => void
  /** True once start() was called or the app began to close. */
  readonly active: boolean
}

/**
 * The drain before close: once a shutdown begins, every answer carries
 * Connection: close, so that no keep-alive connection outlives the
 * process, and /ready fails (health.ts) so that the load balancer stops
 * sending new ones while the listener still accepts them. Closing
 * (preClose) drains too: a keep-alive socket that turned idle after
 * close() began would otherwise hold the server open until its timeout.
 */
export default fp(async (app) => {
  let active = false
  app.decorate('drain', {
    start: () => { active = true },
    get active () { return active }
  })
  app.addHook('preClose', async () => { active = true })
  // Hooks on every request take a callback rather than being async: a
  // promise per hook per request showed in the profile.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (active) void reply.header('connection', 'close')
    done(null, payload)
  })
}, { name: 'drain' })
