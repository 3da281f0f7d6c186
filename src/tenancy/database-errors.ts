import {
  SchoolDatabaseBusy, SchoolDatabaseMissing, SchoolDatabaseUnavailable, SchoolNotMigrated
} from '../errors.js'
import { PoolBusy } from './school-pool.js'

/*
 * A school's database can fail in ways that are not the client's fault and
 * that pass: not created yet, not migrated yet, server down or restarting.
 * Those answer 503 with Retry-After instead of 500.
 */

const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN', 'EPIPE',
  '57P01', // admin_shutdown: terminated by the administrator
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or shutting down
  '53300', // too_many_connections
  '28P01', // invalid_password
  '28000', // invalid_authorization_specification
  '42501' // insufficient_privilege: e.g. CONNECT revoked
])

/** The school's database lacks the app's latest migration. */
export class SchemaBehind extends Error {
  constructor (readonly missingMigration: string) {
    super(`migration ${missingMigration} is not applied`)
    this.name = 'SchemaBehind'
  }
}

export type DatabaseFailure = 'missing' | 'not-migrated' | 'unavailable' | 'busy'

/** Classifies an error thrown by a school's Knex; null when it is not a database condition. */
export function classifyDatabaseError (error: unknown): DatabaseFailure | null {
  if (error instanceof SchemaBehind) return 'not-migrated'
  if (error === null || typeof error !== 'object') return null
  const { code, name, message } = error as { code?: unknown, name?: unknown, message?: unknown }
  if (code === '3D000') return 'missing' // invalid_catalog_name: no such database
  if (code === '42P01') return 'not-migrated' // undefined_table
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return 'unavailable'
  // object_not_in_prerequisite_state is broad; at login it means the
  // database does not accept connections (ALLOW_CONNECTIONS false).
  if (code === '55000' && typeof message === 'string' && /not currently accepting connections/.test(message)) return 'unavailable'
  if (name === 'KnexTimeoutError' || error instanceof PoolBusy) return 'busy'
  // pg's own words: a connection cut, or one that took longer than its
  // connect timeout ("timeout expired": a server hung, or too slow to fork).
  if (typeof message === 'string' && /Connection terminated|connection timeout|timeout expired|Client has encountered a connection error/i.test(message)) {
    return 'unavailable'
  }
  return null
}

/**
 * A write in a read-only transaction: the school's database is read-only
 * by default only while a move (or a restore replacing it) freezes its
 * writes; the service itself never opens a read-only transaction.
 */
export function isWriteRefused (error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '25006' // read_only_sql_transaction
}

/** The server refused the school role's login (no such role, or another password). */
export function isLoginRefused (error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === '28P01' || code === '28000'
}

/** True for failures that mean "do not even try this database for a moment". */
export function isLastingFailure (failure: DatabaseFailure): boolean {
  return failure !== 'busy'
}

export function databaseFailureError (failure: DatabaseFailure, slug: string): Error {
  switch (failure) {
    case 'missing': return new SchoolDatabaseMissing(slug)
    case 'not-migrated': return new SchoolNotMigrated(slug)
    case 'busy': return new SchoolDatabaseBusy(slug)
    case 'unavailable': return new SchoolDatabaseUnavailable(slug)
  }
}
