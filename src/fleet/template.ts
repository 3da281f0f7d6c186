import type { Knex } from 'knex'
import { createDatabase, databaseExists, type CreateOutcome, type CreateStrategy } from '../postgres/admin.js'
import { createKnex, databaseMessage as errorMessage, databaseUrl } from '../postgres/connection.js'
import {
  completedMigrations, MIGRATION_XACT_LOCK_SQL, runMigrations, withMigrationLock, type DirectoryMigrationSource
} from '../postgres/migrations.js'
import { quoteIdentifier } from '../postgres/names.js'
import { createRoleSql, schoolAccessSql } from '../postgres/roles.js'

/**
 * Each server keeps one template database at the latest app migration; new
 * school databases are cloned from it. Its name has a dot, which a school's
 * database name cannot, so no school can ever be given it.
 */
export const TEMPLATE_DATABASE = 'tenant.template'
const QUOTED = quoteIdentifier(TEMPLATE_DATABASE)

export type TemplateState =
  | { kind: 'missing' }
  | { kind: 'current', migration: string | null }
  | { kind: 'behind', pending: string[] }
  /** Its history is not a prefix of the source: a file gone, another order, or ahead. */
  | { kind: 'mismatch', recorded: string[] }

/** Where a history stands against the migration source's names. */
export function compareHistory (recorded: readonly string[], source: readonly string[]): TemplateState {
  if (recorded.some((name, i) => source[i] !== name)) return { kind: 'mismatch', recorded: [...recorded] }
  if (recorded.length < source.length) return { kind: 'behind', pending: source.slice(recorded.length) }
  return { kind: 'current', migration: recorded.at(-1) ?? null }
}

/** Reads the template's history; `admin` is on the server's maintenance database. */
export async function inspectTemplate (admin: Knex, serverUrl: string, source: DirectoryMigrationSource): Promise<TemplateState> {
  if (!await databaseExists(admin, TEMPLATE_DATABASE)) return { kind: 'missing' }
  const recorded = await onTemplate(serverUrl, async (db) => await completedMigrations(db))
  return compareHistory(recorded, await source.names())
}

/** One line for `--status` and the dry run: the state, and what the next run does about it. */
export function describeTemplate (state: TemplateState): string {
  switch (state.kind) {
    case 'missing': return 'missing (the next migrate creates it)'
    case 'current': return `current${state.migration === null ? '' : ` (at ${state.migration})`}`
    case 'behind': return `behind by ${state.pending.length} migration(s) (the next migrate applies them)`
    case 'mismatch': return `its history does not match the migrations (the next migrate rebuilds it): it records ${state.recorded.join(', ')}`
  }
}

/** `--status`: every configured server's template, read without changing it; the servers side by side. */
export async function templateStates (servers: Readonly<Record<string, string>>, source: DirectoryMigrationSource): Promise<Record<string, string>> {
  const states = await Promise.all(Object.entries(servers).map(async ([name, url]) => [name, await templateState(url, source)] as const))
  return Object.fromEntries(states)
}

async function templateState (url: string, source: DirectoryMigrationSource): Promise<string> {
  const admin = createKnex(databaseUrl(url, 'postgres'), { max: 1, applicationName: 'school-lunch:migrate' })
  try {
    return describeTemplate(await inspectTemplate(admin, url, source))
  } catch (error) {
    return `unreadable: ${errorMessage(error)}`
  } finally {
    await admin.destroy()
  }
}

export interface PreparedTemplate {
  /** True when new schools may be cloned from it. */
  ready: boolean
  /** One line for the run's summary. */
  summary: string
}

/**
 * Creates the template when missing, rebuilds it when its history does not
 * match the source, and brings it to the latest migration. It holds no
 * school data, so dropping it loses nothing. Whatever goes wrong only means
 * new schools are created the plain way; it is reported, never fatal.
 */
export async function prepareTemplate (admin: Knex, serverUrl: string, source: DirectoryMigrationSource): Promise<PreparedTemplate> {
  let state: TemplateState
  try {
    state = await inspectTemplate(admin, serverUrl, source)
  } catch (error) {
    return { ready: false, summary: `not used: ${errorMessage(error)}` }
  }
  let summary: string | null = null
  try {
    if (state.kind === 'mismatch') {
      await dropTemplate(admin)
      summary = 'rebuilt (its history did not match the migrations)'
    }
    if (state.kind === 'mismatch' || state.kind === 'missing') {
      if (await createTemplate(admin)) summary ??= 'created'
    }
  } catch (error) {
    const why = state.kind === 'mismatch' ? 'its history did not match the migrations, and it could not be rebuilt: ' : ''
    return { ready: false, summary: `not used: ${why}${errorMessage(error)}` }
  }
  try {
    const [applied, compaction] = await onTemplate(serverUrl, async (db) => await withMigrationLock(db, async () => {
      const names = await runMigrations(db, source)
      // It only saves disk: a template it failed on still makes good schools.
      return [names, await compactTemplate(db).then(() => '', (error) => `; not compacted: ${errorMessage(error)}`)] as const
    }))
    await writeRelationCacheFile(serverUrl)
    return { ready: true, summary: (summary ?? (applied.length > 0 ? `${applied.length} migration(s) applied` : 'up to date')) + compaction }
  } catch (error) {
    return { ready: false, summary: `not used: ${errorMessage(error)}` }
  }
}

/**
 * Tables of this database (system catalogs included, shared ones not)
 * whose own files, or their indexes' or TOAST table's, include a
 * free-space or visibility map.
 */
const TABLES_WITH_MAPS_SQL = `SELECT format('%I.%I', n.nspname, t.relname) AS name
  FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
  WHERE t.relkind IN ('r', 'm') AND NOT t.relisshared AND EXISTS (
    SELECT 1 FROM pg_class f
    WHERE (f.oid IN (t.oid, t.reltoastrelid) OR f.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (t.oid, t.reltoastrelid)))
      AND pg_relation_size(f.oid, 'fsm') + pg_relation_size(f.oid, 'vm') > 0)
  ORDER BY 1`

/**
 * A school's database starts as a copy of every file of the template, so
 * whatever the template carries, every school carries on disk. The
 * template starts as a copy of template1, which initdb vacuumed: its
 * catalogs have free-space and visibility maps, a quarter of its files,
 * of no use to a database nobody has written to yet (vacuum makes them
 * again once a school's tables change). VACUUM FULL rewrites a table, its
 * indexes and its TOAST without them. Only tables that have maps are
 * rewritten, so a template done once costs one query per run until
 * something vacuums it again. Returns how many tables were rewritten.
 */
export async function compactTemplate (db: Knex): Promise<number> {
  const rewritten = new Set<string>()
  // Each rewrite adds rows to pg_attribute for a transient table, which can
  // give it a map again once it was rewritten; a second pass on it adds none.
  for (let pass = 0; pass < 3; pass++) {
    const names = (await db.raw<{ rows: Array<{ name: string }> }>(TABLES_WITH_MAPS_SQL)).rows.map((row) => row.name)
    if (names.length === 0) break
    await db.raw(`VACUUM (FULL) ${names.join(', ')}`)
    for (const name of names) rewritten.add(name)
  }
  return rewritten.size
}

/**
 * Takes back from the template the migrations this run rolled back in the
 * schools, newest first, so that new schools are cloned at the schools'
 * state and a migration file removed after the rollback leaves no trace.
 */
export async function rollbackTemplate (admin: Knex, serverUrl: string, source: DirectoryMigrationSource, rolledBack: ReadonlySet<string>): Promise<string> {
  try {
    if (!await databaseExists(admin, TEMPLATE_DATABASE)) return 'missing; nothing to roll back'
    const undone = await onTemplate(serverUrl, async (db) => await withMigrationLock(db, async () => {
      const names: string[] = []
      for (const name of (await completedMigrations(db)).reverse()) {
        if (!rolledBack.has(name)) break
        await db.migrate.down({ migrationSource: source, name })
        names.push(name)
      }
      return names
    }))
    return undone.length === 0 ? 'nothing to roll back' : `rolled back ${undone.length} migration(s): ${undone.join(', ')}`
  } catch (error) {
    return `not rolled back: ${errorMessage(error)} (the next migrate rebuilds it if its history no longer matches)`
  }
}

/**
 * CREATE DATABASE … TEMPLATE the template. Null when the template is busy
 * (55006: another run migrating it) or gone (3D000): the caller then
 * creates a plain database instead.
 */
export async function cloneFromTemplate (admin: Knex, name: string, strategy?: CreateStrategy): Promise<CreateOutcome | null> {
  try {
    return await createDatabase(admin, name, { template: TEMPLATE_DATABASE, strategy })
  } catch (error) {
    const code = (error as { code?: string }).code
    if (code === '55006' || code === '3D000') return null
    throw error
  }
}

/** True when this call created it; false when another run did at the same moment. */
async function createTemplate (admin: Knex): Promise<boolean> {
  const created = await createDatabase(admin, TEMPLATE_DATABASE) === 'created'
  // Nobody but the admin connects to it; IS_TEMPLATE guards it against a stray DROP.
  await admin.raw(`REVOKE CONNECT, TEMPORARY ON DATABASE ${QUOTED} FROM PUBLIC`)
  await admin.raw(`ALTER DATABASE ${QUOTED} IS_TEMPLATE true`)
  return created
}

/**
 * No FORCE: a session on the template may be another run migrating it, and
 * ending it would fail that run. PostgreSQL refuses the drop instead, and
 * the template keeps its flag.
 */
async function dropTemplate (admin: Knex): Promise<void> {
  await admin.raw(`ALTER DATABASE ${QUOTED} IS_TEMPLATE false`)
  try {
    await admin.raw(`DROP DATABASE IF EXISTS ${QUOTED}`)
  } catch (error) {
    await admin.raw(`ALTER DATABASE ${QUOTED} IS_TEMPLATE true`).catch(() => {})
    throw error
  }
}

/**
 * A backend that finds no pg_internal.init in its database's folder builds
 * its relation cache from the system catalogs and writes the file for the
 * next one; rewriting a system catalog (the compaction's VACUUM FULL)
 * deletes it. CREATE DATABASE copies the file with the rest, so a clone of
 * a template without one pays that build at its first connection, once
 * for every school. One connection here builds it once for all of them;
 * it costs a run one connection per server, so it is not worth knowing
 * whether the file is there. It only saves time: a failure is ignored.
 */
async function writeRelationCacheFile (serverUrl: string): Promise<void> {
  await onTemplate(serverUrl, async (db) => { await db.raw('SELECT 1') }).catch(() => {})
}

/** Closed before returning: PostgreSQL will not copy or drop a database in use. */
async function onTemplate<T> (serverUrl: string, fn: (db: Knex) => Promise<T>): Promise<T> {
  const db = createKnex(databaseUrl(serverUrl, TEMPLATE_DATABASE), { max: 1, applicationName: 'school-lunch:migrate' })
  try {
    return await fn(db)
  } finally {
    await db.destroy()
  }
}

/**
 * A database just cloned from a template this run brought to the latest
 * migration is already migrated; it lacks only its role and grants. Those go
 * to PostgreSQL as one batch, which it runs as one transaction, under the
 * migration lock: one round trip where the general path makes about 25
 * (knex's migrator alone checks its tables a dozen times).
 *
 * Returns false, having changed nothing, when the clone is not at `latest`
 * (the template moved on under a newer release) or any statement fails
 * (another run created the role first); the general path then takes over.
 */
export async function provisionClone (db: Knex, databaseName: string, role: string, password: string, latest: string): Promise<boolean> {
  const expected = latest.replaceAll("'", "''")
  const batch = [
    MIGRATION_XACT_LOCK_SQL,
    `DO $check$ BEGIN
       IF (SELECT name FROM knex_migrations ORDER BY id DESC LIMIT 1) IS DISTINCT FROM '${expected}' THEN
         RAISE EXCEPTION 'not at the latest migration';
       END IF;
     END $check$`,
    createRoleSql(role, password),
    ...schoolAccessSql(databaseName, role)
  ]
  try {
    await db.raw(batch.join(';\n'))
    return true
  } catch {
    return false
  }
}
