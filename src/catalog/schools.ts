import type { Knex } from 'knex'

export type SchoolStatus = 'active' | 'suspended'

export interface School {
  id: number
  slug: string
  name: string
  databaseName: string
  server: string
  status: SchoolStatus
  /** Fingerprint of the secret the school role's password was set with. */
  roleKeyId: string | null
}

interface SchoolRow {
  id: string | number
  slug: string
  name: string
  database_name: string
  server: string
  status: SchoolStatus
  role_key_id: string | null
}

const COLUMNS = ['id', 'slug', 'name', 'database_name', 'server', 'status', 'role_key_id'] as const

function toSchool (row: SchoolRow): School {
  return {
    id: Number(row.id),
    slug: row.slug,
    name: row.name,
    databaseName: row.database_name,
    server: row.server,
    status: row.status,
    roleKeyId: row.role_key_id
  }
}

/** Where a school's database stands, as the last migrate run recorded it. */
export type MigrationState = 'current' | 'behind' | 'failed' | 'never'

/** A school's seeds: still to run, run, turned off; null when provisioned before seeds existed. */
export type SeedingState = 'pending' | 'done' | 'skipped'

export interface SchoolWithStatus extends School {
  /** The latest app migration applied, as recorded by migrate. */
  migration: string | null
  migratedAt: Date | null
  lastError: string | null
  lastRunAt: Date | null
  seeding: SeedingState | null
}

/** The state of a school relative to `latest`, the newest app migration. */
export function migrationState (school: SchoolWithStatus, latest: string | undefined): MigrationState {
  if (school.lastError !== null) return 'failed'
  if (school.migration === null) return school.migratedAt === null ? 'never' : 'behind'
  return school.migration === latest ? 'current' : 'behind'
}

export interface NewSchool {
  slug: string
  name: string
  databaseName: string
  server: string
}

/** The catalog's schools table (and the migration status beside it). */
export function schoolsRepository (catalog: Knex) {
  return {
    async listWithStatus ({ slugs }: { slugs?: string[] } = {}): Promise<SchoolWithStatus[]> {
      const query = catalog('schools as s')
        .leftJoin('school_migration_status as m', 'm.school_id', 's.id')
        .select(...COLUMNS.map((c) => `s.${c}`), 'm.migration', 'm.migrated_at', 'm.last_error', 'm.last_run_at', 'm.seeding')
        .orderBy('s.slug')
      if (slugs !== undefined) void query.whereIn('s.slug', slugs)
      const rows = await query as Array<SchoolRow & {
        migration: string | null, migrated_at: Date | null, last_error: string | null, last_run_at: Date | null, seeding: SeedingState | null
      }>
      return rows.map((row) => ({
        ...toSchool(row),
        migration: row.migration,
        migratedAt: row.migrated_at,
        lastError: row.last_error,
        lastRunAt: row.last_run_at,
        seeding: row.seeding
      }))
    },

    /** Slugs whose last migrate run failed. */
    async failedSlugs (): Promise<string[]> {
      const rows = await catalog('schools as s').join('school_migration_status as m', 'm.school_id', 's.id')
        .whereNotNull('m.last_error').orderBy('s.slug').select('s.slug') as Array<{ slug: string }>
      return rows.map((row) => row.slug)
    },

    /** Records a migrate run: the migration now applied, or the error. */
    async recordMigration (schoolId: number, result: { migration: string | null } | { error: string }): Promise<void> {
      const values = 'error' in result
        ? { school_id: schoolId, last_error: result.error, last_run_at: catalog.fn.now() }
        : { school_id: schoolId, migration: result.migration, migrated_at: catalog.fn.now(), last_error: null, last_run_at: catalog.fn.now() }
      await catalog('school_migration_status').insert(values).onConflict('school_id').merge()
    },

    /**
     * Records one error for many schools at once (a server that could not be
     * reached, a run not yet done with them), keeping what each has applied.
     */
    async recordFailures (schoolIds: readonly number[], error: string): Promise<void> {
      // A few thousand rows a statement stays far below PostgreSQL's 65,535 parameters.
      for (let i = 0; i < schoolIds.length; i += 5_000) {
        await catalog('school_migration_status')
          .insert(schoolIds.slice(i, i + 5_000).map((id) => ({ school_id: id, last_error: error, last_run_at: catalog.fn.now() })))
          .onConflict('school_id').merge(['last_error', 'last_run_at'])
      }
    },

    async insert (school: NewSchool): Promise<School> {
      const [row] = await catalog<SchoolRow>('schools')
        .insert({ slug: school.slug, name: school.name, database_name: school.databaseName, server: school.server })
        .returning([...COLUMNS])
      return toSchool(row as SchoolRow)
    },

    async setStatus (slug: string, status: SchoolStatus): Promise<boolean> {
      return await catalog('schools').where({ slug }).update({ status }) > 0
    },

    async remove (slug: string): Promise<boolean> {
      return await catalog('schools').where({ slug }).delete() > 0
    },

    /** Schools per server name, for placing a new one. */
    async countByServer (): Promise<Map<string, number>> {
      const rows = await catalog('schools').select('server').count({ n: '*' }).groupBy('server') as Array<{ server: string, n: string }>
      return new Map(rows.map((row) => [row.server, Number(row.n)]))
    },

    async list ({ slugs }: { slugs?: string[] } = {}): Promise<School[]> {
      const query = catalog<SchoolRow>('schools').select(...COLUMNS).orderBy('slug')
      if (slugs !== undefined) void query.whereIn('slug', slugs)
      return (await query).map(toSchool)
    },

    async setRoleKeyId (id: number, roleKeyId: string): Promise<void> {
      await catalog('schools').where({ id }).update({ role_key_id: roleKeyId })
    },

    async findBySlug (slug: string, { timeoutMs }: { timeoutMs?: number } = {}): Promise<School | null> {
      const query = catalog<SchoolRow>('schools').select(...COLUMNS).where({ slug }).first()
      const row = await (timeoutMs === undefined ? query : query.timeout(timeoutMs, { cancel: true }))
      return row === undefined ? null : toSchool(row)
    }
  }
}

/** Which seeds ran for each school, and whether its seeds are still to run (beside the migration status). */
export function seedsRepository (catalog: Knex) {
  return {
    async setSeeding (schoolId: number, seeding: SeedingState): Promise<void> {
      await catalog('school_migration_status').insert({ school_id: schoolId, seeding }).onConflict('school_id').merge(['seeding'])
    },

    /** The seeds recorded as run for a school, by name. */
    async seedsRun (schoolId: number): Promise<string[]> {
      return await catalog('school_seeds').where({ school_id: schoolId }).orderBy('seed').pluck('seed') as string[]
    },

    /** Records seeds as run; one already recorded fails with a unique violation (23505). */
    async recordSeeds (schoolId: number, seeds: readonly string[]): Promise<void> {
      if (seeds.length > 0) await catalog('school_seeds').insert(seeds.map((seed) => ({ school_id: schoolId, seed })))
    }
  }
}
