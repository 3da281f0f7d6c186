import type { Knex } from 'knex'
import { schoolsRepository, type School, type SchoolStatus } from '../catalog/schools.js'
import { databaseExists } from '../postgres/admin.js'
import { createKnex, databaseMessage, databaseOf, databaseUrl } from '../postgres/connection.js'
import { assertSchoolDatabaseName, isSafeName, NAME_RULE, quoteIdentifier } from '../postgres/names.js'
import { schoolRoleName } from '../postgres/roles.js'
import type { Topology } from '../postgres/topology.js'
import { resolveSchoolServer, ServerNotConfigured } from './school-server.js'

/*
 * Catalog changes an operator makes to one school: add, suspend, resume,
 * drop. They work on the catalog's rows (and, for drop, the server), so a
 * school added with plain SQL is handled the same way.
 */

/** A refusal an operator can act on: the message says what to do; no stack trace needed. */
export class SchoolAdminError extends Error {
  override name = 'SchoolAdminError'
}

/** `school_` + the slug, with `-` turned into `_` so the name needs no quoting in psql. */
export function defaultDatabaseName (slug: string): string {
  return `school_${slug.replaceAll('-', '_')}`
}

/**
 * The server a new school goes to: of the configured servers (`order`, as
 * TENANT_SERVERS lists them), the one holding the fewest schools, whatever
 * their status; a tie goes to the one listed first.
 */
export function placeSchool (order: readonly string[], counts: ReadonlyMap<string, number>): string {
  const [first, ...rest] = order
  if (first === undefined) throw new SchoolAdminError('no tenant server is configured')
  return rest.reduce((best, name) => (counts.get(name) ?? 0) < (counts.get(best) ?? 0) ? name : best, first)
}

export interface AddSchoolInput {
  slug: string
  name: string
  /** A name from `servers`; placed by placeSchool when absent. */
  server?: string
  /** defaultDatabaseName(slug) when absent. */
  databaseName?: string
}

export const SCHOOL_NAME_MAX = 200

/** A new school's names or server are not acceptable; nothing was touched (the CLI makes it exit code 2). */
export class InvalidSchoolInput extends SchoolAdminError {
  override name = 'InvalidSchoolInput'
}

/**
 * The school as it will be inserted: names checked, database name settled,
 * name trimmed. `servers` are the configured server names.
 */
export function checkNewSchool (input: AddSchoolInput, servers: readonly string[]): AddSchoolInput & { databaseName: string } {
  const databaseName = input.databaseName ?? defaultDatabaseName(input.slug)
  const name = input.name.trim()
  if (!isSafeName(input.slug)) throw new InvalidSchoolInput(`School slug ${JSON.stringify(input.slug)} is not allowed: use ${NAME_RULE}`)
  try {
    assertSchoolDatabaseName(databaseName)
  } catch (error) {
    // A long slug makes a default name over 63 bytes; the fix is to pick one.
    throw new InvalidSchoolInput(`${(error as Error).message}${input.databaseName === undefined ? ' (choose one with --database)' : ''}`)
  }
  if (name.length === 0 || name.length > SCHOOL_NAME_MAX) {
    throw new InvalidSchoolInput(`School name must be 1 to ${SCHOOL_NAME_MAX} characters (got ${name.length})`)
  }
  if (input.server !== undefined && !servers.includes(input.server)) {
    throw new InvalidSchoolInput(`Unknown server "${input.server}": TENANT_SERVERS names ${servers.join(', ')}`)
  }
  return { ...input, name, databaseName }
}

/**
 * Inserts a school into the catalog, placed by placeSchool unless its
 * server is given; it still needs migrate to get its database and role.
 * `servers` are the configured server names, in TENANT_SERVERS order.
 */
export async function addSchool (catalog: Knex, servers: readonly string[], input: AddSchoolInput): Promise<School> {
  const { slug, name, databaseName, server: chosen } = checkNewSchool(input, servers)
  const schools = schoolsRepository(catalog)
  const server = chosen ?? placeSchool(servers, await schools.countByServer())
  try {
    return await schools.insert({ slug, name, databaseName, server })
  } catch (error) {
    const { code, constraint } = error as { code?: string, constraint?: string }
    if (code === '23505' && constraint === 'schools_slug_key') {
      throw new SchoolAdminError(`School "${slug}" already exists`)
    }
    if (code === '23505' && constraint === 'schools_database_name_key') {
      const owner = await catalog('schools').where({ database_name: databaseName }).first('slug') as { slug: string } | undefined
      throw new SchoolAdminError(`Database "${databaseName}" already belongs to school "${owner?.slug ?? '?'}": choose another with --database`)
    }
    throw error
  }
}

async function findSchool (catalog: Knex, slug: string): Promise<School> {
  const school = await schoolsRepository(catalog).findBySlug(slug)
  if (school === null) throw new SchoolAdminError(`Unknown school "${slug}": it is not in the catalog`)
  return school
}

/**
 * Suspends or resumes a school. Running API processes hear of it through the
 * catalog's NOTIFY trigger, or at the latest when their cache entry expires.
 * `changed` is false when the school already had that status.
 */
export async function setSchoolStatus (catalog: Knex, slug: string, status: SchoolStatus): Promise<{ school: School, changed: boolean }> {
  const school = await findSchool(catalog, slug)
  if (school.status === status) return { school, changed: false }
  await schoolsRepository(catalog).setStatus(slug, status)
  return { school: { ...school, status }, changed: true }
}

/** Where the catalog and the school servers are, as in Topology. */
export type Servers = Pick<Topology, 'catalogUrl' | 'servers'>

/** Everything `drop` removes for one school. */
export interface DropPlan {
  school: School
  serverUrl: string
  role: string
}

/** What dropSchool would remove; refuses names that are not a school's and unconfigured servers. */
export async function planDrop (catalog: Knex, where: Servers, slug: string): Promise<DropPlan> {
  const school = await findSchool(catalog, slug)
  let serverUrl: string
  try {
    // DROP statements are built from these names.
    serverUrl = resolveSchoolServer(school, where.servers)
  } catch (error) {
    const message = error instanceof ServerNotConfigured
      ? `School "${slug}" is on server "${school.server}", which is not configured (known: ${Object.keys(where.servers).join(', ')}); its database cannot be reached`
      : (error as Error).message
    throw new SchoolAdminError(message)
  }
  if (school.databaseName === databaseOf(where.catalogUrl)) {
    throw new SchoolAdminError(`Database "${school.databaseName}" is the catalog's; refusing to drop it`)
  }
  return { school, serverUrl, role: schoolRoleName(school.databaseName) }
}

export interface DropOutcome extends DropPlan {
  /** False when the database was not there (the school was never migrated). */
  databaseFound: boolean
  roleFound: boolean
}

/**
 * Removes a suspended school for good: its database (connections to it are
 * ended), its role, then its catalog row. The row stays locked meanwhile,
 * so nobody resumes or moves the school halfway, and a failure leaves the
 * row in place to run the drop again.
 */
export async function dropSchool (catalog: Knex, where: Servers, slug: string): Promise<DropOutcome> {
  return await catalog.transaction(async (trx) => {
    await trx('schools').where({ slug }).forUpdate().first('id')
    const plan = await planDrop(trx, where, slug)
    if (plan.school.status !== 'suspended') {
      throw new SchoolAdminError(`School "${slug}" is active: suspend it first (npm run schools -- suspend ${slug})`)
    }
    const admin = createKnex(databaseUrl(plan.serverUrl, 'postgres'), { max: 1, applicationName: 'school-lunch:schools' })
    try {
      const databaseFound = await databaseExists(admin, plan.school.databaseName)
      // The database goes first: the role's privileges live in it, and a
      // role that still holds privileges cannot be dropped.
      await admin.raw(`DROP DATABASE IF EXISTS ${quoteIdentifier(plan.school.databaseName)} WITH (FORCE)`)
      const roleFound = (await admin.raw<{ rows: unknown[] }>('SELECT 1 FROM pg_roles WHERE rolname = ?', [plan.role])).rows.length > 0
      await admin.raw(`DROP ROLE IF EXISTS ${quoteIdentifier(plan.role)}`)
      await trx('schools').where({ id: plan.school.id }).delete()
      return { ...plan, databaseFound, roleFound }
    } finally {
      await admin.destroy()
    }
  })
}

/**
 * Drops a school database that no longer serves its school, then its role
 * (the role's privileges live in the database). Called once the catalog has
 * moved on, so a failure is reported, not thrown: the message, or null.
 */
export async function dropSchoolDatabase (serverUrl: string, databaseName: string, applicationName: string): Promise<string | null> {
  const admin = createKnex(databaseUrl(serverUrl, 'postgres'), { max: 1, applicationName })
  try {
    await admin.raw(`DROP DATABASE IF EXISTS ${quoteIdentifier(databaseName)} WITH (FORCE)`)
    await admin.raw(`DROP ROLE IF EXISTS ${quoteIdentifier(schoolRoleName(databaseName))}`)
    return null
  } catch (error) {
    return databaseMessage(error)
  } finally {
    await admin.destroy()
  }
}
