import type { Knex } from 'knex'
import { schoolsRepository, type School } from '../catalog/schools.js'
import { publicCopies, type PublicCopies } from '../lunch/public-menus.js'
import { lunchWeeks } from '../lunch/repository.js'
import { createKnex } from '../postgres/connection.js'
import { schoolRoleUrl } from '../postgres/roles.js'
import { runConcurrently } from './concurrency.js'
import { resolveSchoolServer } from './school-server.js'

/** Where the schools are and how to log in to them. */
export interface Fleet {
  catalogUrl: string
  /** Tenant server name → URL, as in Topology.servers. */
  servers: Record<string, string>
  /** TENANT_ROLE_SECRET: the school roles' passwords derive from it. */
  roleSecret: string
}

/** What a task gets for one school: the catalog row and a Knex on its database. */
export interface SchoolTaskContext {
  school: School
  /** Logged in as the school's own role: row access on its tables, no DDL. */
  db: Knex
}

/** What a task script exports as its default. */
export type SchoolTask<T = unknown> = (context: SchoolTaskContext) => Promise<T>

export type SchoolResult<T> =
  | { slug: string, ok: true, value: T }
  | { slug: string, ok: false, error: Error }

export interface ForEachSchoolOptions {
  /** Schools run at once (at least 1). */
  concurrency: number
  /** Slugs to limit the run to; every school when absent. */
  only?: string[]
  /**
   * Suspended schools are skipped unless this is true: a suspended school
   * is one the service refuses, and a fleet-wide chore should not wake it.
   * A suspended school named in `only` is not skipped silently: it gets a
   * failed result saying so.
   */
  includeSuspended?: boolean
  /** Called after each school that ran; `total` counts the schools run. */
  onProgress?: (progress: { done: number, total: number, failed: number }) => void
}

/**
 * Runs `fn` once per school, at most `concurrency` at a time, and returns
 * one result per school in slug order. Each school gets its own pool of one
 * connection, logged in as the school's role, and destroyed as soon as its
 * school is done. A school whose task throws (or whose database cannot be
 * reached) is reported as failed; it never stops the others. A slug in
 * `only` that cannot run (not in the catalog, or suspended) is reported as
 * failed too, so nothing asked for is dropped without a word.
 *
 * `fleet` is explicit so the function reads no configuration: scripts pass
 * `{ catalogUrl, servers }` from resolveTopology and
 * `roleSecret: config.tenantRoleSecret`.
 */
export async function forEachSchool<T> (fleet: Fleet, fn: SchoolTask<T>, options: ForEachSchoolOptions): Promise<Array<SchoolResult<T>>> {
  const catalog = createKnex(fleet.catalogUrl, { max: 2, applicationName: 'school-lunch:for-each' })
  try {
    return await runTasks(fleet, fn, options, catalog)
  } finally {
    await catalog.destroy()
  }
}

async function runTasks<T> (fleet: Fleet, fn: SchoolTask<T>, options: ForEachSchoolOptions, catalog: Knex): Promise<Array<SchoolResult<T>>> {
  const schools = await schoolsRepository(catalog).list(options.only === undefined ? {} : { slugs: options.only })
  const copies = publicCopies(catalog)

  const refused: Array<SchoolResult<T>> = []
  for (const slug of new Set(options.only ?? [])) {
    const school = schools.find((s) => s.slug === slug)
    if (school === undefined) refused.push({ slug, ok: false, error: new Error('not in the catalog') })
    else if (school.status === 'suspended' && options.includeSuspended !== true) {
      refused.push({ slug, ok: false, error: new Error('suspended (include suspended schools to run it)') })
    }
  }
  const selected = schools.filter((s) => s.status === 'active' || options.includeSuspended === true)

  let done = 0
  let failed = 0
  const ran = await runConcurrently(selected, options.concurrency, async (school): Promise<SchoolResult<T>> => {
    const result = await runOne(fleet, school, fn, copies)
    done++
    if (!result.ok) failed++
    options.onProgress?.({ done, total: selected.length, failed })
    return result
  })
  return [...ran, ...refused].sort((a, b) => a.slug < b.slug ? -1 : a.slug > b.slug ? 1 : 0)
}

async function runOne<T> (fleet: Fleet, school: School, fn: SchoolTask<T>, copies: PublicCopies): Promise<SchoolResult<T>> {
  let db: Knex | null = null
  let pendingId: number | null = null
  try {
    const serverUrl = resolveSchoolServer(school, fleet.servers)
    // A task may publish or edit weeks behind the API's back, so the public
    // copies are noted before it and written again after it (see
    // src/lunch/public-menus.ts); a run killed in between leaves the note
    // to the API's repairer.
    pendingId = await copies.markPending(school.id)
    db = createKnex(schoolRoleUrl(serverUrl, school.databaseName, fleet.roleSecret), {
      max: 1,
      applicationName: 'school-lunch:for-each'
    })
    return { slug: school.slug, ok: true, value: await fn({ school, db }) }
  } catch (error) {
    return { slug: school.slug, ok: false, error: error instanceof Error ? error : new Error(String(error)) }
  } finally {
    if (db !== null && pendingId !== null) await recopyPublicWeeks(copies, school.id, db, pendingId)
    await db?.destroy()
  }
}

/**
 * Copies a school's published weeks to the public copies afresh, on a
 * connection to the school, after work behind the API's back (a task, a
 * restore) that took the note `pendingId` first. When it fails, the note
 * stays and the API's repairer copies later: not the work's failure.
 */
export async function recopyPublicWeeks (copies: PublicCopies, schoolId: number, db: Knex, pendingId: number): Promise<void> {
  try {
    await copies.copyAllWeeks(db, schoolId, async (school) => await lunchWeeks(school).listPublished(), pendingId)
  } catch {
    // The note makes the copy the repairer's job.
  }
}
