import fp from 'fastify-plugin'
import type { ServerPoolStats } from './tenancy/tenant-pools.js'

/** GET /metrics: pool and cache figures in Prometheus text format. */
export default fp(async (app) => {
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const pools = app.tenancy.pools.stats()
    const directory = app.tenancy.directory.stats()
    const lines: string[] = []
    const metric = (name: string, type: 'gauge' | 'counter', help: string, value: number): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`)
    }
    metric('tenant_pools_open', 'gauge', 'School database pools in the cache.', pools.open)
    metric('tenant_pools_retiring', 'gauge', 'Evicted pools still draining their requests or closing.', pools.retiring)
    metric('tenant_connections_in_use', 'gauge', 'Connections to school databases serving a query.', pools.connectionsInUse)
    metric('tenant_connections_idle', 'gauge', 'Open idle connections to school databases.', pools.connectionsIdle)
    metric('tenant_connections_pending', 'gauge', 'Requests waiting for a connection to their school\'s database.', pools.connectionsPending)
    metric('tenant_connections_opened_total', 'counter', 'Connections opened to school databases (each a new PostgreSQL backend).', pools.connectionsOpened)
    metric('tenant_pool_hits_total', 'counter', 'Requests that found their school\'s pool open.', pools.hits)
    metric('tenant_pool_misses_total', 'counter', 'Requests that had to open their school\'s pool.', pools.misses)
    metric('tenant_pool_evictions_total', 'counter', 'Pools closed to make room for another school.', pools.evictions)
    const perServer = (name: string, type: 'gauge' | 'counter', help: string, value: (server: ServerPoolStats) => number): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...pools.servers.map((server) => `${name}{server="${server.server}"} ${value(server)}`))
    }
    perServer('tenant_server_connections_budget', 'gauge', 'TENANT_CONNECTIONS_MAX: connections this process may hold on the server.', (s) => s.budget)
    perServer('tenant_server_connections_held', 'gauge', 'Connections counted against the budget: open, opening or closing.', (s) => s.connectionsHeld)
    perServer('tenant_server_connections_in_use', 'gauge', 'Connections serving a request.', (s) => s.connectionsInUse)
    perServer('tenant_server_connections_idle', 'gauge', 'Open connections serving no request.', (s) => s.connectionsIdle)
    perServer('tenant_server_slot_waits_total', 'counter', 'First connections of a school that waited for a slot of the budget.', (s) => s.slotWaits)
    perServer('tenant_server_pool_growths_total', 'counter', 'Connections added to a school pool because its requests queued.', (s) => s.growths)
    perServer('tenant_server_pool_shrinks_total', 'counter', 'Extra connections closed: idle, or taken for another school.', (s) => s.shrinks)
    perServer('tenant_server_pool_evictions_total', 'counter', 'Idle schools that lost their last connection to another school.', (s) => s.evictions)
    metric('catalog_cache_hits_total', 'counter', 'School lookups answered from the cache.', directory.hits)
    metric('catalog_cache_misses_total', 'counter', 'School lookups that asked the catalog.', directory.misses)
    metric('catalog_cache_entries', 'gauge', 'Schools (and unknown slugs) in the lookup cache.', directory.entries)
    const publicMenus = app.publicMenus.stats()
    metric('public_cache_hits_total', 'counter', 'Public menu reads answered from this process\'s cache.', publicMenus.cacheHits)
    metric('public_cache_misses_total', 'counter', 'Public menu reads that asked the catalog.', publicMenus.cacheMisses)
    metric('public_cache_entries', 'gauge', 'Public answers (menus and not-found) in the cache.', publicMenus.cacheEntries)
    lines.push('# HELP public_refusals_total Public reads refused before any lookup (rate_limited, bad_week) or for copies that may be behind (stale).',
      '# TYPE public_refusals_total counter',
      ...Object.entries(publicMenus.refusals).map(([reason, n]) => `public_refusals_total{reason="${reason}"} ${n}`))
    metric('public_school_connections_opened_total', 'counter', 'Connections opened to school databases for the public menus: repairs only, never an anonymous read.', publicMenus.schoolConnectionsOpened)
    metric('public_copy_failures_total', 'counter', 'Staff writes whose public copy was left to the repairer.', publicMenus.copyFailures)
    metric('public_repairs_total', 'counter', 'Schools whose public copies the repairer rewrote.', publicMenus.repairs)
    metric('public_repair_failures_total', 'counter', 'Repairs that failed and will be retried.', publicMenus.repairFailures)
    return await reply.type('text/plain; version=0.0.4; charset=utf-8').send(lines.join('\n') + '\n')
  })
}, { name: 'metrics', dependencies: ['tenancy', 'public-menus'] })
