import { Counter, Gauge, type Registry } from 'prom-client'
import type { PublicMenuStats } from '../lunch/public-plugin.js'
import type { ServerPoolStats, TenantPoolStats } from '../tenancy/tenant-pools.js'

/** The service's own figures, read once per scrape. */
export interface ServiceFigures {
  pools: TenantPoolStats
  directory: { hits: number, misses: number, entries: number }
  publicMenus: PublicMenuStats
}

type Kind = 'gauge' | 'counter'
type Figure = [name: string, kind: Kind, help: string, value: (figures: ServiceFigures) => number]
type ServerFigure = [name: string, kind: Kind, help: string, value: (server: ServerPoolStats) => number]

const FIGURES: Figure[] = [
  ['tenant_pools_open', 'gauge', 'School database pools in the cache.', (f) => f.pools.open],
  ['tenant_pools_retiring', 'gauge', 'Evicted pools still draining their requests or closing.', (f) => f.pools.retiring],
  ['tenant_connections_in_use', 'gauge', 'Connections to school databases serving a query.', (f) => f.pools.connectionsInUse],
  ['tenant_connections_idle', 'gauge', 'Open idle connections to school databases.', (f) => f.pools.connectionsIdle],
  ['tenant_connections_pending', 'gauge', 'Requests waiting for a connection to their school\'s database.', (f) => f.pools.connectionsPending],
  ['tenant_connections_opened_total', 'counter', 'Connections opened to school databases (each a new PostgreSQL backend).', (f) => f.pools.connectionsOpened],
  ['tenant_pool_hits_total', 'counter', 'Requests that found their school\'s pool open.', (f) => f.pools.hits],
  ['tenant_pool_misses_total', 'counter', 'Requests that had to open their school\'s pool.', (f) => f.pools.misses],
  ['tenant_pool_evictions_total', 'counter', 'Pools closed to make room for another school.', (f) => f.pools.evictions],
  ['catalog_cache_hits_total', 'counter', 'School lookups answered from the cache.', (f) => f.directory.hits],
  ['catalog_cache_misses_total', 'counter', 'School lookups that asked the catalog.', (f) => f.directory.misses],
  ['catalog_cache_entries', 'gauge', 'Schools (and unknown slugs) in the lookup cache.', (f) => f.directory.entries],
  ['public_cache_hits_total', 'counter', 'Public menu reads answered from this process\'s cache.', (f) => f.publicMenus.cacheHits],
  ['public_cache_misses_total', 'counter', 'Public menu reads that asked the catalog.', (f) => f.publicMenus.cacheMisses],
  ['public_cache_entries', 'gauge', 'Public answers (menus and not-found) in the cache.', (f) => f.publicMenus.cacheEntries],
  ['public_school_connections_opened_total', 'counter', 'Connections opened to school databases for the public menus: repairs only, never an anonymous read.', (f) => f.publicMenus.schoolConnectionsOpened],
  ['public_copy_failures_total', 'counter', 'Staff writes whose public copy was left to the repairer.', (f) => f.publicMenus.copyFailures],
  ['public_repairs_total', 'counter', 'Schools whose public copies the repairer rewrote.', (f) => f.publicMenus.repairs],
  ['public_repair_failures_total', 'counter', 'Repairs that failed and will be retried.', (f) => f.publicMenus.repairFailures]
]

// Per tenant server, the finest grain: a label per school would make
// thousands of series per process (docs/operators.md, "Metrics").
const SERVER_FIGURES: ServerFigure[] = [
  ['tenant_server_connections_budget', 'gauge', 'TENANT_CONNECTIONS_MAX: connections this process may hold on the server.', (s) => s.budget],
  ['tenant_server_connections_held', 'gauge', 'Connections counted against the budget: open, opening or closing.', (s) => s.connectionsHeld],
  ['tenant_server_connections_in_use', 'gauge', 'Connections serving a request.', (s) => s.connectionsInUse],
  ['tenant_server_connections_idle', 'gauge', 'Open connections serving no request.', (s) => s.connectionsIdle],
  ['tenant_server_slot_waits_total', 'counter', 'First connections of a school that waited for a slot of the budget.', (s) => s.slotWaits],
  ['tenant_server_pool_growths_total', 'counter', 'Connections added to a school pool because its requests queued.', (s) => s.growths],
  ['tenant_server_pool_shrinks_total', 'counter', 'Extra connections closed: idle, or taken for another school.', (s) => s.shrinks],
  ['tenant_server_pool_evictions_total', 'counter', 'Idle schools that lost their last connection to another school.', (s) => s.evictions]
]

/**
 * The pool, budget, catalog and public-menu figures as prom-client
 * collectors: each reads its value when scraped. The sources count on
 * their own, so a counter is set to their total rather than incremented.
 */
export function registerServiceCollectors (registry: Registry, figures: () => ServiceFigures): void {
  for (const [name, kind, help, value] of FIGURES) {
    collector(registry, name, kind, help, [], (set) => { set({}, value(figures())) })
  }
  for (const [name, kind, help, value] of SERVER_FIGURES) {
    collector(registry, name, kind, help, ['server'], (set) => {
      for (const server of figures().pools.servers) set({ server: server.server }, value(server))
    })
  }
  collector(registry, 'public_refusals_total', 'counter',
    'Public reads refused before any lookup (rate_limited, bad_week) or for copies that may be behind (stale).', ['reason'],
    (set) => { for (const [reason, n] of Object.entries(figures().publicMenus.refusals)) set({ reason }, n) })
}

type Labels = Record<string, string>

function collector (registry: Registry, name: string, kind: Kind, help: string, labelNames: string[], read: (set: (labels: Labels, value: number) => void) => void): void {
  if (kind === 'gauge') {
    // eslint-disable-next-line no-new
    new Gauge({ name, help, labelNames, registers: [registry], collect () { read((labels, value) => { this.set(labels, value) }) } })
    return
  }
  // eslint-disable-next-line no-new
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect () {
      this.reset()
      read((labels, value) => { this.inc(labels, value) })
    }
  })
}
