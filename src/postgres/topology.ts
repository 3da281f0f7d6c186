import type { Config } from '../config.js'
import { attachEmbeddedPostgres, type EmbeddedServer } from './embedded.js'
import { databaseUrl } from './connection.js'

export const DEFAULT_SERVER = 'default'
export const EMBEDDED_CATALOG_DATABASE = 'catalog'

/** Where the catalog and the school databases live, as this process sees it. */
export interface Topology {
  catalogUrl: string
  /** Tenant server name → URL (its database part is ignored). */
  servers: Record<string, string>
  /**
   * Server name → the PgBouncer in front of it (TENANT_POOLERS), where one
   * is: the API's school connections go there, while migrate, move, backup
   * and restore always go to the server itself.
   */
  poolers?: Record<string, string>
  embedded: EmbeddedServer | null
  /** Lets go of the embedded server, if any; safe to call twice. */
  release: () => void
}

/**
 * Uses DATABASE_URL when set; otherwise starts the embedded PostgreSQL or
 * attaches to the one another process of this project already runs.
 */
export async function resolveTopology (config: Config, { announce = true } = {}): Promise<Topology> {
  let catalogUrl = config.databaseUrl
  let embedded: EmbeddedServer | null = null
  if (catalogUrl === null) {
    embedded = await attachEmbeddedPostgres(config.embedded)
    catalogUrl = databaseUrl(embedded.url, EMBEDDED_CATALOG_DATABASE)
    if (announce) {
      process.stderr.write(`Embedded PostgreSQL ${embedded.started ? 'started' : 'attached'} (data in ${config.embedded.dataDir}).\n` +
        `  Catalog: psql ${catalogUrl}\n`)
    }
  }
  return {
    catalogUrl,
    servers: config.tenantServers ?? { [DEFAULT_SERVER]: catalogUrl },
    poolers: config.tenantPoolers ?? {},
    embedded,
    release: () => embedded?.release()
  }
}
