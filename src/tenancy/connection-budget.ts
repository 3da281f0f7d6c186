import type { ConnectionBudgets } from '../config.js'
import { createKnex, databaseMessage, databaseUrl, describeUrl, openConnection } from '../postgres/connection.js'
import { POOLER_ROLE, poolerPassword } from '../postgres/roles.js'

/** Unset, a server's budget is this, or less on a server with less room. */
export const DEFAULT_BUDGET = 100

/** What a server lets clients hold, as its settings say. */
export interface ServerLimits {
  maxConnections: number
  superuserReserved: number
  /** `reserved_connections`, PostgreSQL 16 and later; 0 before. */
  reserved: number
}

export interface ServerBudgetPlan {
  server: string
  budget: number
  /** One line for the log: where the number comes from. */
  explanation: string
}

/** An explicit budget the server cannot hold: the process refuses to start. */
export class BudgetTooLarge extends Error {
  override name = 'BudgetTooLarge'
}

/** Connections the API leaves to others on a server: the catalog's pool and listener, and migrate. */
export interface Shares { catalog: number, migrate: number }

export function decideBudget (server: string, setting: number | null, limits: ServerLimits | null, shares: Shares): ServerBudgetPlan {
  if (limits === null) {
    return { server, budget: setting ?? DEFAULT_BUDGET, explanation: 'the server could not be reached at start, so its limits were not checked' }
  }
  const room = limits.maxConnections - limits.superuserReserved - limits.reserved
  const settings = `max_connections ${limits.maxConnections} - superuser_reserved_connections ${limits.superuserReserved}` +
    (limits.reserved > 0 ? ` - reserved_connections ${limits.reserved}` : '') + ` = ${room}`
  if (setting !== null) {
    if (setting > room) {
      throw new BudgetTooLarge(`TENANT_CONNECTIONS_MAX for server "${server}" is ${setting}, more than the server allows: ${settings}`)
    }
    return { server, budget: setting, explanation: `TENANT_CONNECTIONS_MAX; the server allows ${settings}` }
  }
  const left = room - shares.catalog - shares.migrate
  return {
    server,
    budget: Math.max(1, Math.min(DEFAULT_BUDGET, left)),
    explanation: `TENANT_CONNECTIONS_MAX unset: the smaller of ${DEFAULT_BUDGET} and what the server leaves ` +
      `(${settings}, less ${shares.catalog} for the catalog and ${shares.migrate} for migrate: ${left})`
  }
}

/** What a PgBouncer lets clients hold, and how it pools (its SHOW CONFIG). */
export interface PoolerLimits {
  maxClientConn: number
  poolMode: string
  defaultPoolSize: number
}

/**
 * Through a pooler, the budget counts this process's client connections to
 * it, which its max_client_conn bounds; the backends behind it are the
 * pooler's to bound, per school, with its pool size.
 */
export function decidePooledBudget (server: string, setting: number | null, limits: PoolerLimits | null): ServerBudgetPlan {
  if (limits === null) {
    return { server, budget: setting ?? DEFAULT_BUDGET, explanation: 'the pooler\'s limits could not be read at start, so they were not checked' }
  }
  const allows = `PgBouncer's max_client_conn ${limits.maxClientConn}`
  const pooling = `; it holds at most ${limits.defaultPoolSize} backend(s) per school (default_pool_size, pool_mode ${limits.poolMode})`
  if (setting !== null) {
    if (setting > limits.maxClientConn) {
      throw new BudgetTooLarge(`TENANT_CONNECTIONS_MAX for server "${server}" is ${setting}, more than its pooler allows: ${allows}`)
    }
    return { server, budget: setting, explanation: `TENANT_CONNECTIONS_MAX; the pooler allows ${allows}${pooling}` }
  }
  return {
    server,
    budget: Math.min(DEFAULT_BUDGET, limits.maxClientConn),
    explanation: `TENANT_CONNECTIONS_MAX unset: the smaller of ${DEFAULT_BUDGET} and ${allows}${pooling}`
  }
}

/** Read as the pooler's stats user (stats_users in deploy/pgbouncer.ini), on its admin console. */
export async function readPoolerLimits (poolerUrl: string, roleSecret: string): Promise<PoolerLimits> {
  const url = new URL(poolerUrl)
  url.username = POOLER_ROLE
  url.password = encodeURIComponent(poolerPassword(roleSecret))
  url.pathname = '/pgbouncer'
  const client = await openConnection(url.toString(), { applicationName: 'school-lunch:api', connectTimeoutMillis: 3_000 })
  try {
    // The console takes the simple protocol only: a query without parameters.
    const { rows } = await client.query<{ key: string, value: string }>('SHOW CONFIG')
    const value = (key: string): string => {
      const row = rows.find((r) => r.key === key)
      if (row === undefined) throw new Error(`the pooler's SHOW CONFIG has no ${key}: is it PgBouncer?`)
      return row.value
    }
    return { maxClientConn: Number(value('max_client_conn')), poolMode: value('pool_mode'), defaultPoolSize: Number(value('default_pool_size')) }
  } finally {
    await client.end()
  }
}

export async function readServerLimits (serverUrl: string): Promise<ServerLimits> {
  const admin = createKnex(databaseUrl(serverUrl, 'postgres'), { max: 1, connectTimeoutMillis: 3_000, applicationName: 'school-lunch:api' })
  try {
    const { rows } = await admin.raw<{ rows: Array<{ max: number, su: number, reserved: number }> }>(`
      SELECT current_setting('max_connections')::int AS max,
             current_setting('superuser_reserved_connections')::int AS su,
             coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved`)
    const row = rows[0]
    if (row === undefined) throw new Error('the server returned no settings')
    return { maxConnections: row.max, superuserReserved: row.su, reserved: row.reserved }
  } finally {
    await admin.destroy()
  }
}

export interface BudgetCheckOptions {
  servers: Readonly<Record<string, string>>
  /**
   * Servers the API reaches through a pooler, whose limits are the ones
   * that apply; the role secret derives the pooler's stats user's password.
   */
  pooled?: { poolers: Readonly<Record<string, string>>, roleSecret: string }
  setting: ConnectionBudgets
  catalogUrl: string
  catalogPoolSize: number
  migrateConcurrency: number
  log: { info: (object: object, message: string) => void, warn: (object: object, message: string) => void }
}

/**
 * Reads every tenant server's limits at start and settles its budget; throws
 * BudgetTooLarge when a budget that was set cannot fit. A server that cannot
 * be reached does not stop the start: it is logged and keeps its setting.
 */
export async function checkBudgets (options: BudgetCheckOptions): Promise<Map<string, number>> {
  const catalogServer = describeUrl(databaseUrl(options.catalogUrl, 'postgres'))
  const plans = await Promise.all(Object.entries(options.servers).map(async ([server, url]) => {
    const setting = options.setting.servers[server] ?? options.setting.all
    const pooler = options.pooled?.poolers[server]
    if (pooler !== undefined && options.pooled !== undefined) {
      const limits = await readPoolerLimits(pooler, options.pooled.roleSecret).catch((error) => {
        options.log.warn({ server, error: databaseMessage(error) }, `could not read the limits of the pooler of tenant server ${server}`)
        return null
      })
      return decidePooledBudget(server, setting, limits)
    }
    const limits = await readServerLimits(url).catch((error) => {
      options.log.warn({ server, error: databaseMessage(error) }, `could not read the connection limits of tenant server ${server}`)
      return null
    })
    const shares: Shares = {
      catalog: describeUrl(databaseUrl(url, 'postgres')) === catalogServer ? options.catalogPoolSize + 1 : 0,
      // A migrate run's schools, its CREATE DATABASE pool (4) and its liveness probe.
      migrate: options.migrateConcurrency + 5
    }
    return decideBudget(server, setting, limits, shares)
  }))
  for (const plan of plans) {
    options.log.info({ server: plan.server, budget: plan.budget }, `connection budget on ${plan.server}: ${plan.budget} (${plan.explanation})`)
  }
  return new Map(plans.map((plan) => [plan.server, plan.budget]))
}
