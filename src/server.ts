import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from './app.js'
import { prepareCatalog } from './catalog/catalog.js'
import { loadConfigOrExit } from './config.js'
import { resolveTopology } from './postgres/topology.js'

const SHUTDOWN_GRACE_MS = 10_000

const config = loadConfigOrExit()
const topology = await resolveTopology(config)

let app: Awaited<ReturnType<typeof buildApp>>
try {
  // Idempotent and lock-protected, so every API process may run it on start:
  // a fresh machine gets its catalog from `npm start` alone.
  await prepareCatalog(topology.catalogUrl)
  app = await buildApp({ config, catalogUrl: topology.catalogUrl, servers: topology.servers })
  if (config.jwt.usingDevelopmentSecret) {
    app.log.warn('JWT_SECRET is not set: using the development secret. Never do this in production.')
  }
  await app.listen({ host: config.host, port: config.port })
} catch (error) {
  process.stderr.write(`Could not start: ${(error as Error).message}\n`)
  topology.release()
  process.exit(1)
}

let closing = false
async function shutdown (signal: NodeJS.Signals): Promise<void> {
  if (closing) {
    // A second Ctrl-C or a supervisor repeating its signal must not cut
    // in-flight requests off halfway; the grace period bounds the wait.
    app.log.warn({ signal }, `already shutting down; ${signal} ignored until the grace period ends`)
    return
  }
  closing = true
  // Ctrl-C at a terminal has no load balancer to wait for.
  const drainMs = signal === 'SIGINT' ? 0 : config.shutdownDrainMs
  if (drainMs > 0) await drain(drainMs)
  app.log.info({ signal }, 'shutting down: finishing in-flight requests')
  const force = setTimeout(() => {
    app.log.error('shutdown took too long; exiting')
    topology.release()
    process.exit(1)
  }, SHUTDOWN_GRACE_MS)
  force.unref()
  try {
    await app.close()
  } finally {
    topology.release()
  }
  process.exit(0)
}

/**
 * /ready fails at once while the listener goes on accepting, every answer
 * with Connection: close, until the load balancer has seen /ready fail and
 * sends nothing more. Closing at once instead resets the connections that
 * are still in the kernel's accept queue.
 */
async function drain (ms: number): Promise<void> {
  app.drain.start()
  app.log.info({ drainMs: ms }, `shutting down: /ready answers 503; accepting connections for ${ms} ms more`)
  await sleep(ms)
}

process.on('SIGINT', () => { void shutdown('SIGINT') })
process.on('SIGTERM', () => { void shutdown('SIGTERM') })
