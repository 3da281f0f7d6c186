import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Knex } from 'knex'
import { prepareCatalog } from '../../src/catalog/catalog.js'
import { UsageError } from '../../src/cli/command-line.js'
import { progressLine } from '../../src/cli/progress.js'
import type { Config } from '../../src/config.js'
import { forEachSchool, type SchoolResult, type SchoolTask } from '../../src/fleet/for-each-school.js'
import { configuredProvisioning, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { addSchool, checkNewSchool, dropSchool, InvalidSchoolInput, planDrop, SchoolAdminError } from '../../src/fleet/school-admin.js'
import { formatTable } from '../../src/fleet/table.js'
import { createKnex } from '../../src/postgres/connection.js'
import type { Topology } from '../../src/postgres/topology.js'
import { COMMAND_USAGE } from './usage.js'

export interface Context {
  config: Config
  topology: Topology
}

/** npm run moves to the project root; INIT_CWD is where the operator typed the command. */
export const operatorDirectory = (): string => process.env.INIT_CWD ?? process.cwd()

export async function withCatalog<T> (topology: Topology, fn: (catalog: Knex) => Promise<T>): Promise<T> {
  const catalog = createKnex(topology.catalogUrl, { max: 1, applicationName: 'school-lunch:schools' })
  try {
    return await fn(catalog)
  } finally {
    await catalog.destroy()
  }
}

export async function add ({ config, topology }: Context, input: { slug: string, name: string, server?: string, databaseName?: string }, migrate: boolean, seed: boolean): Promise<number> {
  const servers = Object.keys(topology.servers)
  try {
    // Before anything is created: a bad name or server is a bad command line.
    checkNewSchool(input, servers)
  } catch (error) {
    if (error instanceof InvalidSchoolInput) throw new UsageError(error.message, COMMAND_USAGE.add)
    throw error
  }
  // Onboarding the first school on a fresh server finds no catalog yet.
  await prepareCatalog(topology.catalogUrl)
  const school = await withCatalog(topology, async (catalog) => await addSchool(catalog, servers, input))
  process.stdout.write(`Added school ${school.slug} (${school.name}) on server ${school.server}, database ${school.databaseName}.\n`)
  if (!migrate) {
    process.stdout.write(`Not provisioned (--no-migrate): npm run migrate -- --school ${school.slug} creates its database and role.\n`)
    return 0
  }
  const report = await migrateSchools(topology, { concurrency: 1, only: [school.slug], seeding: seed ? 'run' : 'skip', ...configuredProvisioning(config) })
  const outcome = report.schools[0]
  if (outcome === undefined) throw new SchoolAdminError(`School "${school.slug}" left the catalog before it could be provisioned`)
  if (outcome.error !== null) {
    process.stderr.write(`Provisioning failed: ${outcome.error}\n` +
      `The school is in the catalog; once the cause is fixed, run: npm run migrate -- --school ${school.slug}\n`)
    return 1
  }
  const database = outcome.database === 'cloned' ? 'created from the template' : outcome.database
  // A clone of the template comes with every migration already applied.
  const migrations = outcome.migrations.length === 0 ? 'already at the latest migration' : `${outcome.migrations.length} migration(s) applied`
  const seeds = !seed ? 'no seeds (--no-seed)' : outcome.seeds.length === 0 ? 'no seeds to run' : `seeds run: ${outcome.seeds.join(', ')}`
  process.stdout.write(`Provisioned: database ${database}, role ${outcome.role}, ${migrations}, ${seeds}.\n`)
  return 0
}

export async function drop ({ topology }: Context, slug: string, confirmed: boolean): Promise<number> {
  return await withCatalog(topology, async (catalog) => {
    if (!confirmed) {
      const { school, role } = await planDrop(catalog, topology, slug)
      throw new UsageError('Refusing to drop without --yes. It would remove, for good:\n' +
        `  database ${school.databaseName} on server ${school.server} (all its data)\n` +
        `  role ${role}\n` +
        `  the catalog row of school ${slug} (${school.name})\n` +
        (school.status === 'active' ? `The school is active: suspend it first (npm run schools -- suspend ${slug}).\n` : '') +
        'Run again with --yes to drop it.')
    }
    const outcome = await dropSchool(catalog, topology, slug)
    process.stdout.write(`Dropped school ${slug}:\n` +
      `  database ${outcome.school.databaseName} on server ${outcome.school.server}: ${outcome.databaseFound ? 'dropped' : 'was not there'}\n` +
      `  role ${outcome.role}: ${outcome.roleFound ? 'dropped' : 'was not there'}\n` +
      '  catalog row: removed\n')
    return 0
  })
}

export async function exec ({ config, topology }: Context, script: string, options: { concurrency: number, only: string[] | undefined, includeSuspended: boolean }): Promise<number> {
  const file = path.resolve(operatorDirectory(), script)
  if (!fs.existsSync(file)) throw new UsageError(`No task script at ${file}`, COMMAND_USAGE.exec)
  let task: unknown
  try {
    task = (await import(pathToFileURL(file).href) as { default?: unknown }).default
  } catch (error) {
    throw new SchoolAdminError(`Could not load ${script}: ${(error as Error).message}`)
  }
  if (typeof task !== 'function') {
    throw new UsageError(`${script} is not a task script: it must export a default async function ({ school, db })`, COMMAND_USAGE.exec)
  }

  const progress = progressLine('Schools')
  const results = await forEachSchool(
    { catalogUrl: topology.catalogUrl, servers: topology.servers, roleSecret: config.tenantRoleSecret },
    task as SchoolTask,
    {
      concurrency: options.concurrency,
      only: options.only,
      includeSuspended: options.includeSuspended,
      onProgress: progress.update
    })
  progress.end()
  if (results.length === 0) {
    process.stdout.write(`No ${options.includeSuspended ? '' : 'active '}schools in the catalog; nothing ran.\n`)
    return 0
  }
  const failed = results.filter((r) => !r.ok).length
  process.stdout.write(`${formatTable(['school', 'result', 'details'], results.map((r) => [r.slug, r.ok ? 'ok' : 'FAILED', details(r)]))}\n\n` +
    `${results.length} school(s): ${results.length - failed} ok, ${failed} failed.\n`)
  return failed > 0 ? 1 : 0
}

/** One line of a task's result or error, short enough for a table. */
function details (result: SchoolResult<unknown>): string {
  let text: string
  if (!result.ok) {
    text = errorText(result.error)
  } else if (typeof result.value === 'string') {
    text = result.value
  } else {
    try {
      text = JSON.stringify(result.value) ?? String(result.value)
    } catch {
      text = String(result.value)
    }
  }
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > 120 ? `${line.slice(0, 119)}…` : line
}

/** An error's message; knex puts the failing SQL before the database's own words, which are enough. */
export function errorText (error: Error): string {
  return typeof (error as { code?: unknown }).code === 'string' ? error.message.replace(/^[\s\S]*? - /, '') : error.message
}
