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

/** The catalog's schools table. */
export function schoolsRepository (catalog: Knex) {
  return {
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
