/*
 * A server under benchmark, run as its own process so that the load
 * generator never shares its event loop:
 *
 *   serve.ts service    the real app (buildApp) on the configured databases
 *   serve.ts baseline   the same route and query on one fixed pool: no JWT,
 *                       no catalog, no tenancy. The stack's physical limit.
 *
 * Prints `listening <url>` once ready; stops on SIGTERM. The service also
 * answers GET /bench/state: its caches and heap, which /metrics does not
 * all show (scenario H).
 */
import Fastify from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfigOrExit } from '../../src/config.js'
import { readSettings } from '../../src/env-reader.js'
import { lunchWeeks } from '../../src/lunch/repository.js'
import { sharedSchemas, weekIdParams } from '../../src/lunch/schemas.js'
import { createKnex } from '../../src/postgres/connection.js'
import { settings } from '../../src/settings/all.js'

const mode = process.argv[2]
const config = loadConfigOrExit()

async function baseline (): Promise<() => Promise<void>> {
  const url = readSettings(process.env, (read) => read.postgresUrl(settings.BASELINE_DATABASE_URL))
  if (url === null) throw new Error('BASELINE_DATABASE_URL is required')
  const db = createKnex(url, { max: config.tenantPoolSize, applicationName: 'school-lunch:baseline' })
  const app = Fastify({ logger: false })
  for (const schema of sharedSchemas) app.addSchema(schema)
  app.get<{ Params: { id: string } }>('/api/lunch-weeks/:id', {
    schema: { params: weekIdParams, response: { 200: { $ref: 'LunchWeekWithDays#' } } }
  }, async (request, reply) => {
    const week = await lunchWeeks(db).get(request.params.id)
    return week ?? await reply.code(404).send()
  })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  process.stdout.write(`listening ${address}\n`)
  return async () => { await app.close(); await db.destroy() }
}

async function service (): Promise<() => Promise<void>> {
  const catalogUrl = config.databaseUrl
  if (catalogUrl === null || config.tenantServers === null) throw new Error('DATABASE_URL and TENANT_SERVERS are required')
  const app = await buildApp({ config, catalogUrl, servers: config.tenantServers })
  app.get('/bench/state', { schema: { hide: true } }, async () => {
    const pools = app.tenancy.pools.stats()
    const { heapUsed, heapTotal, external, arrayBuffers, rss } = process.memoryUsage()
    return {
      caches: {
        schools: app.tenancy.directory.stats().entries,
        pools: pools.open,
        connections: pools.connectionsIdle + pools.connectionsInUse,
        publicAnswers: app.publicMenus.stats().cacheEntries
      },
      memory: { heapUsed, heapTotal, external, arrayBuffers, rss }
    }
  })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  process.stdout.write(`listening ${address}\n`)
  return async () => { await app.close() }
}

const close = mode === 'baseline' ? await baseline() : mode === 'service' ? await service() : null
if (close === null) {
  process.stderr.write('usage: serve.ts service|baseline\n')
  process.exit(2)
}
process.once('SIGTERM', () => { void close().then(() => process.exit(0)) })
