import type { FastifyRequest } from 'fastify'
import type { ConnectionBudgets, JwtConfig } from '../config.js'
import type { Claims, SchoolChoice } from './token.js'

// The tenancy plugin's options, in a module of their own: the plugin
// imports pool-lender.ts, which needs these types too and so must not
// import the plugin for them.

export type SchoolResolver = (request: FastifyRequest, claims: Claims) => SchoolChoice

export interface TenancyOptions {
  jwt: JwtConfig
  /** Where school_changed notifications come from. */
  catalogUrl: string
  /** Tenant server name → URL. */
  servers: Record<string, string>
  /**
   * Server name → the PgBouncer in front of it (TENANT_POOLERS): school
   * pools log in there, and its limits are the ones checked at start.
   */
  poolers?: Record<string, string>
  catalogCacheTtlMs: number
  tenantPoolSize: number
  tenantConnectionsMax: ConnectionBudgets
  tenantIdleTimeoutMs: number
  tenantConnectConcurrency: number
  /** What the start-up check leaves to the catalog and to migrate on each server. */
  catalogPoolSize: number
  migrateConcurrency: number
  /** TENANT_ROLE_SECRET: pools log in as the school's own role with it. */
  roleSecret: string
  /**
   * After a failed connect, a database is not tried again for this long, so
   * a dead server costs its school one fast 503 per request and nobody else
   * a thing. Default 1 s; tests that repair a database set it shorter.
   */
  unavailableForMs?: number
  /**
   * Which school a request acts for, given its verified claims; the claim
   * and X-School rule (chooseSchool) unless another is given. Whatever it
   * returns, a slug the token does not allow is refused.
   */
  resolveSchool?: SchoolResolver
}
