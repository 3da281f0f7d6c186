import { performance } from 'node:perf_hooks'
import type { Knex } from 'knex'
import type pg from 'pg'
import { schoolsRepository, type School } from '../catalog/schools.js'
import { createKnex, databaseMessage, databaseOf, databaseUrl } from '../postgres/connection.js'
import { appMigrations, type DirectoryMigrationSource } from '../postgres/migrations.js'
import { quoteIdentifier } from '../postgres/names.js'
import { schoolRoleName, schoolRolePassword } from '../postgres/roles.js'
import { dropSchoolDatabase, SchoolAdminError, type Servers } from './school-admin.js'
import { checkHistory, SchoolDatabaseBuild } from './school-database.js'
import { holdMigrationLock } from './school-lock.js'
import { resolveSchoolServer } from './school-server.js'
import {
  compareSums, copyTable, listAppTables, openCopyClient, readMigrationHistory, readSequences, tableSums, truncateTables, writeSequences,
  type AppTable, type SequenceValue, type TableSum
} from './table-copy.js'
import { freezeWrites, thawWrites } from './write-freeze.js'

/*
 * npm run schools -- move <slug> --to <server>: the school's database is
 * built on the target server, its rows copied there while the school's
 * writes are frozen, checked table by table, and the catalog switched; every
 * API process drops its pool of the old database on the catalog's NOTIFY.
 * Until the switch, any failure puts everything back: the school is served
 * from the source, writable again, and the half-built target is dropped.
 */

export type MoveStep = 'target' | 'copy' | 'verify' | 'switch'

export interface MoveOptions {
  slug: string
  /** A server name of TENANT_SERVERS. */
  to: string
  /** Leave the source database and role in place (still frozen) instead of dropping them. */
  keepSource?: boolean
  /** TENANT_ROLE_SECRET: the role on the target gets the password the API logs in with. */
  roleSecret: string
  /** Clone the target's template when it stands where the source does (default true). */
  useTemplate?: boolean
  /** How long the freeze may wait for the school's sessions to end. */
  freezeTimeoutMs?: number
  migrations?: DirectoryMigrationSource
  /**
   * Called once in each step, at the point where a pause or a failure tells
   * most. target: the new database and its role exist, nothing copied;
   * copy: writes are frozen and the rows are in the target, not committed;
   * verify: the copy is committed, not compared yet; switch: just before the
   * catalog changes. Tests pause here, or throw to fail the step.
   */
  atStep?: (step: MoveStep) => Promise<void>
}

export interface TableMoved {
  name: string
  rows: number
  bytes: number
}

export interface MoveReport {
  slug: string
  from: string
  to: string
  databaseName: string
  /** How the target database was made. */
  target: 'cloned' | 'created'
  tables: TableMoved[]
  /** From the freeze of the school's writes to the catalog's switch. */
  freezeMs: number
  totalMs: number
  /** What became of the source database and role once the school was switched. */
  source: { kept: true } | { kept: false, error: string | null }
}

/** A move that failed in `step` and was undone as `undone` says. */
export class MoveFailed extends SchoolAdminError {
  override name = 'MoveFailed'
  constructor (readonly step: MoveStep, cause: string, readonly undone: string[]) {
    super(`Move failed at the ${step} step: ${cause}\n${undone.map((line) => `  ${line}`).join('\n')}`)
  }
}

/** The switch's commit went unanswered and the catalog cannot be read back: nothing is undone blindly. */
class SwitchUnknown extends SchoolAdminError {
  override name = 'SwitchUnknown'
  constructor (slug: string, to: string, cause: unknown) {
    super(`Move failed at the switch step, and whether the catalog changed is unknown (${databaseMessage(cause)}). Nothing was undone: ` +
      `if npm run schools -- list shows ${slug} on ${to}, drop the source database by hand; otherwise drop the target's, ` +
      `reset the source's default_transaction_read_only and run npm run migrate -- --school ${slug} --verify to allow its writes again.`)
  }
}

const APPLICATION = 'school-lunch:move'

export async function moveSchool (where: Servers, options: MoveOptions): Promise<MoveReport> {
  const catalog = createKnex(where.catalogUrl, { max: 1, applicationName: APPLICATION })
  try {
    const route = planMove(await schoolsRepository(catalog).findBySlug(options.slug), where, options)
    return await new SchoolMove(catalog, route, options).run()
  } finally {
    await catalog.destroy()
  }
}

interface Route {
  school: School
  sourceUrl: string
  targetUrl: string
}

/** The refusals a move makes before touching anything. */
function planMove (school: School | null, where: Servers, { slug, to }: MoveOptions): Route {
  if (school === null) throw new SchoolAdminError(`Unknown school "${slug}": it is not in the catalog`)
  const targetUrl = where.servers[to]
  if (targetUrl === undefined) throw new SchoolAdminError(`Unknown server "${to}": TENANT_SERVERS names ${Object.keys(where.servers).join(', ')}`)
  if (school.server === to) throw new SchoolAdminError(`School "${slug}" is already on server "${to}"; nothing to move`)
  let sourceUrl: string
  try {
    sourceUrl = resolveSchoolServer(school, where.servers)
  } catch (error) {
    throw new SchoolAdminError(`School "${slug}" cannot be moved: ${(error as Error).message}`)
  }
  if (school.databaseName === databaseOf(where.catalogUrl)) throw new SchoolAdminError(`Database "${school.databaseName}" is the catalog's`)
  return { school, sourceUrl, targetUrl }
}

interface Copied {
  tables: AppTable[]
  moved: TableMoved[]
  sums: TableSum[]
  sequences: SequenceValue[]
}

class SchoolMove {
  private readonly role: string
  private readonly started = performance.now()
  private readonly targetAdmin: Knex
  private build: SchoolDatabaseBuild | null = null
  /** On the source database: holds the migration lock, freezes and thaws. */
  private lock: pg.Client | null = null
  private read: pg.Client | null = null
  private write: pg.Client | null = null
  private step: MoveStep = 'target'
  private frozenAt: number | null = null

  constructor (private readonly catalog: Knex, private readonly route: Route, private readonly options: MoveOptions) {
    this.role = schoolRoleName(route.school.databaseName)
    this.targetAdmin = createKnex(databaseUrl(route.targetUrl, 'postgres'), { max: 1, applicationName: APPLICATION })
  }

  private get source (): DirectoryMigrationSource {
    return this.options.migrations ?? appMigrations
  }

  async run (): Promise<MoveReport> {
    try {
      const history = await this.prepare()
      let copied: Copied
      try {
        await this.buildTarget(history)
        copied = await this.copy()
        await this.verify(copied)
        await this.switchCatalog()
      } catch (error) {
        throw await this.undo(error)
      }
      const freezeMs = performance.now() - (this.frozenAt ?? 0)
      const source = await this.finishSource()
      const { school } = this.route
      return {
        slug: school.slug,
        from: school.server,
        to: this.options.to,
        databaseName: school.databaseName,
        target: this.build?.database ?? 'created',
        tables: copied.moved,
        freezeMs,
        totalMs: performance.now() - this.started,
        source
      }
    } finally {
      await this.close()
    }
  }

  /** The source's lock and history; a refusal here has changed nothing. */
  private async prepare (): Promise<string[]> {
    const { school, sourceUrl } = this.route
    try {
      this.lock = await openCopyClient(sourceUrl, school.databaseName, APPLICATION)
    } catch (error) {
      if ((error as { code?: string }).code !== '3D000') throw error
      throw new SchoolAdminError(`School "${school.slug}" has no database on server "${school.server}" yet: run npm run migrate first`)
    }
    await holdMigrationLock(this.lock, school.slug)
    const { rows } = await this.lock.query<{ found: string | null }>("SELECT to_regclass('public.knex_migrations')::text AS found")
    if (rows[0]?.found == null) throw new SchoolAdminError(`School "${school.slug}" has never been migrated: run npm run migrate first`)
    const history = await readMigrationHistory(this.lock)
    checkHistory(history, await this.source.names(), `The database of school "${school.slug}"`)
    return history
  }

  private async buildTarget (history: string[]): Promise<void> {
    this.step = 'target'
    this.build = new SchoolDatabaseBuild({
      admin: this.targetAdmin,
      serverUrl: this.route.targetUrl,
      databaseName: this.route.school.databaseName,
      role: this.role,
      password: schoolRolePassword(this.options.roleSecret, this.role),
      history,
      source: this.source,
      useTemplate: this.options.useTemplate !== false
    })
    await this.build.build()
    await this.options.atStep?.('target')
  }

  /** Freezes the source's writes, then copies every table and sequence in one snapshot. */
  private async copy (): Promise<Copied> {
    this.step = 'copy'
    const { school, sourceUrl, targetUrl } = this.route
    const lock = this.lock as pg.Client
    const tables = await listAppTables(lock)
    this.frozenAt = performance.now()
    await freezeWrites(lock, this.role, this.options.freezeTimeoutMs)
    const read = this.read = await openCopyClient(sourceUrl, school.databaseName, APPLICATION)
    const write = this.write = await openCopyClient(targetUrl, school.databaseName, APPLICATION)
    await read.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    await write.query('BEGIN')
    await truncateTables(write, tables)
    const moved: TableMoved[] = []
    for (const table of tables) moved.push({ name: table.name, ...await copyTable(read, write, table) })
    const sequences = await readSequences(read)
    await writeSequences(write, sequences)
    const sums = await tableSums(read, tables)
    await read.query('COMMIT')
    await this.options.atStep?.('copy')
    await write.query('COMMIT')
    return { tables, moved, sums, sequences }
  }

  /** The same row count and checksum query on both sides, and the sequences where they were. */
  private async verify ({ tables, sums, sequences }: Copied): Promise<void> {
    this.step = 'verify'
    await this.options.atStep?.('verify')
    const write = this.write as pg.Client
    const problems = compareSums(sums, await tableSums(write, tables))
    const landed = await readSequences(write)
    for (const want of sequences) {
      const got = landed.find((s) => s.name === want.name)
      if (got?.lastValue !== want.lastValue || got.isCalled !== want.isCalled) problems.push(`sequence ${want.name} did not take its value`)
    }
    if (problems.length > 0) throw new Error(`the target does not match the source: ${problems.join('; ')}`)
  }

  /** One catalog update; its trigger's NOTIFY sends every API process to the target. */
  private async switchCatalog (): Promise<void> {
    this.step = 'switch'
    await this.options.atStep?.('switch')
    const { school } = this.route
    try {
      await this.catalog.transaction(async (trx) => {
        const row = await trx('schools').where({ id: school.id }).forUpdate().first('server', 'database_name') as { server: string, database_name: string } | undefined
        if (row?.server !== school.server || row.database_name !== school.databaseName) {
          throw new Error('the school\'s catalog row changed during the move')
        }
        await trx('schools').where({ id: school.id }).update({ server: this.options.to })
      })
    } catch (error) {
      // A commit whose answer was lost may have gone through: read it back before undoing anything.
      const now = await schoolsRepository(this.catalog).findBySlug(school.slug).catch(() => undefined)
      if (now?.server === this.options.to) return
      if (now === undefined) throw new SwitchUnknown(school.slug, this.options.to, error)
      throw error
    }
  }

  /** Before the switch: the source writable again and the target gone. The error to throw, with what was undone. */
  private async undo (error: unknown): Promise<Error> {
    // A refusal (the target name is taken) found nothing made yet; an unknown switch must not be undone blindly.
    if (error instanceof SwitchUnknown || (error instanceof SchoolAdminError && this.build?.database == null)) return error as Error
    const undone: string[] = []
    await this.endCopyClients()
    if (this.frozenAt !== null) {
      try {
        await thawWrites(this.lock as pg.Client, this.role)
        undone.push(`School "${this.route.school.slug}" is served from server "${this.route.school.server}" and writable again; nothing was lost.`)
      } catch (thawError) {
        undone.push(`Writes could NOT be allowed again on the source (${databaseMessage(thawError)}): ` +
          `ALTER DATABASE "${this.route.school.databaseName}" RESET default_transaction_read_only, then ` +
          `npm run migrate -- --school ${this.route.school.slug} --verify to grant them back.`)
      }
    } else {
      undone.push(`School "${this.route.school.slug}" is still served from server "${this.route.school.server}"; its writes were never stopped.`)
    }
    try {
      await this.build?.remove()
      if (this.build?.database != null) undone.push(`The half-built database on server "${this.options.to}" was dropped${this.build.roleCreated ? ', with its role' : ''}.`)
    } catch (removeError) {
      undone.push(`The half-built database on server "${this.options.to}" could not be dropped (${databaseMessage(removeError)}); the next move drops it.`)
    }
    return new MoveFailed(this.step, databaseMessage(error), undone)
  }

  /** After the switch: the target loses its building mark; the source is dropped, or kept frozen. */
  private async finishSource (): Promise<MoveReport['source']> {
    await this.endCopyClients()
    await this.build?.complete().catch(() => {})
    const { school, sourceUrl } = this.route
    const lock = this.lock as pg.Client
    if (this.options.keepSource === true) {
      const note = `school-lunch: copy of school ${school.slug} left by a move to server ${this.options.to} on ${new Date().toISOString()}; not in service`
      await lock.query(`COMMENT ON DATABASE ${quoteIdentifier(school.databaseName)} IS '${note}'`).catch(() => {})
      // A migrate that waited for the lock would otherwise work on a copy nobody uses.
      await lock.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()').catch(() => {})
      return { kept: true }
    }
    // Dropped while the lock is still held: FORCE ends the lock's session and a migrate waiting for it
    // together, so that migrate fails for this school instead of running on a copy nobody uses.
    return { kept: false, error: await dropSchoolDatabase(sourceUrl, school.databaseName, APPLICATION) }
  }

  private async endCopyClients (): Promise<void> {
    await Promise.all([this.read, this.write].map(async (client) => await client?.end().catch(() => {})))
    this.read = null
    this.write = null
  }

  private async close (): Promise<void> {
    await this.endCopyClients()
    await this.lock?.end().catch(() => {})
    await this.targetAdmin.destroy()
  }
}
