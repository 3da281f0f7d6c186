import type { Knex } from 'knex'
import { createDatabase, type CreateOutcome } from '../postgres/admin.js'
import { createKnex, databaseUrl } from '../postgres/connection.js'
import { runMigrations, withMigrationLock, type DirectoryMigrationSource } from '../postgres/migrations.js'
import { quoteIdentifier } from '../postgres/names.js'
import { ensureSchoolRole, grantTableAccess, restrictDatabase } from '../postgres/roles.js'
import { SchoolAdminError } from './school-admin.js'
import { cloneFromTemplate, inspectTemplate } from './template.js'

/*
 * A school database built beside the one in service, for a move (on another
 * server) or a restore: created, given its role, brought to a given point
 * of the migration history, and only then filled. Until it serves its
 * school it carries a comment saying so; a run that failed or died leaves a
 * database with that comment, which the next run may drop and build again.
 * A database without it is never dropped in its place.
 */

/** The comment on a database being built; exported for tests that leave one behind as a dead run would. */
export const BUILDING_MARK = 'school-lunch: being built for a school (move or restore); not in service yet'

/**
 * `history` must be where this code's migrations once stood: the same names
 * in the same order. Throws naming the first migration it does not know.
 */
export function checkHistory (history: readonly string[], known: readonly string[], whose: string): void {
  const unknown = history.find((name, i) => known[i] !== name)
  if (unknown === undefined) return
  throw new SchoolAdminError(known.includes(unknown)
    ? `${whose} records migration ${unknown} out of this code's order of migrations`
    : `${whose} is at migration ${unknown}, which this code does not have (made by a newer release?)`)
}

export interface BuildRequest {
  /** On the server's maintenance database, as its admin. */
  admin: Knex
  serverUrl: string
  databaseName: string
  role: string
  password: string
  /** The migrations it must end at: another database's history, checked by checkHistory. */
  history: readonly string[]
  source: DirectoryMigrationSource
  /** Clone the server's template when it stands exactly at `history`. */
  useTemplate: boolean
}

export class SchoolDatabaseBuild {
  /** Set once the database exists: cloned from the template, or created and migrated. */
  database: 'cloned' | 'created' | null = null
  /** True when this build created the role, so that removing the build removes it too. */
  roleCreated = false

  constructor (readonly request: BuildRequest) {}

  private get quoted (): string {
    return quoteIdentifier(this.request.databaseName)
  }

  /** Creates the database, marked as being built, with its role, at `history`. */
  async build (): Promise<void> {
    const { admin, databaseName, history, source } = this.request
    await this.clearLeftover()
    this.database = await this.clone() ?? await createOrFail(admin, databaseName)
    await admin.raw(`COMMENT ON DATABASE ${this.quoted} IS '${BUILDING_MARK}'`)
    await this.underLock(async (db) => {
      const role = await ensureSchoolRole(db, this.request.role, this.request.password, true)
      this.roleCreated = role === 'created'
      await restrictDatabase(db, databaseName, this.request.role)
      await runMigrations(db, source.upTo(history.at(-1) ?? null))
      await grantTableAccess(db, this.request.role)
    })
  }

  /** The migrations after `history`, and grants on whatever tables they add. */
  async migrateToLatest (): Promise<string[]> {
    return await this.underLock(async (db) => {
      const applied = await runMigrations(db, this.request.source)
      await grantTableAccess(db, this.request.role)
      return applied
    })
  }

  /** It serves its school now: the mark goes, and no later run may drop it. */
  async complete (): Promise<void> {
    await this.request.admin.raw(`COMMENT ON DATABASE ${this.quoted} IS NULL`)
  }

  /** Drops what this build made: the database (its sessions ended) and the role if it made it. */
  async remove (): Promise<void> {
    const { admin, role } = this.request
    if (this.database !== null) await admin.raw(`DROP DATABASE IF EXISTS ${this.quoted} WITH (FORCE)`)
    if (this.roleCreated) await admin.raw(`DROP ROLE IF EXISTS ${quoteIdentifier(role)}`)
  }

  /** A database of that name already there: an earlier build's leftover is dropped, anything else refused. */
  private async clearLeftover (): Promise<void> {
    const { admin, databaseName } = this.request
    const { rows } = await admin.raw<{ rows: Array<{ note: string | null }> }>(
      "SELECT shobj_description(oid, 'pg_database') AS note FROM pg_database WHERE datname = ?", [databaseName])
    if (rows.length === 0) return
    if (rows[0]?.note !== BUILDING_MARK) {
      throw new SchoolAdminError(`The server already has a database "${databaseName}", not made by a move or a restore; ` +
        'drop or rename it first if it is not needed')
    }
    await admin.raw(`DROP DATABASE ${this.quoted} WITH (FORCE)`)
  }

  /** A clone when the template stands exactly at `history`; null to create plainly. */
  private async clone (): Promise<'cloned' | null> {
    const { admin, serverUrl, databaseName, history, source, useTemplate } = this.request
    if (!useTemplate || history.length === 0) return null
    const state = await inspectTemplate(admin, serverUrl, source).catch(() => null)
    if (state?.kind !== 'current' || state.migration !== history.at(-1)) return null
    const outcome = await cloneFromTemplate(admin, databaseName)
    if (outcome === null) return null
    createdHere(databaseName, outcome)
    return 'cloned'
  }

  /** One admin connection to the new database, holding its migration lock. */
  private async underLock<T> (fn: (db: Knex) => Promise<T>): Promise<T> {
    const db = createKnex(databaseUrl(this.request.serverUrl, this.request.databaseName), { max: 1, applicationName: 'school-lunch:build' })
    try {
      return await withMigrationLock(db, async () => await fn(db))
    } finally {
      await db.destroy()
    }
  }
}

/** CREATE DATABASE where nobody else may have made it meanwhile. */
async function createOrFail (admin: Knex, name: string): Promise<'created'> {
  createdHere(name, await createDatabase(admin, name))
  return 'created'
}

function createdHere (name: string, outcome: CreateOutcome): void {
  if (outcome !== 'created') throw new SchoolAdminError(`Database "${name}" appeared on the server while it was being built`)
}
