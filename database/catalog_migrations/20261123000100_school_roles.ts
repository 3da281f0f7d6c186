import type { Knex } from 'knex'

// role_key_id: which TENANT_ROLE_SECRET set the school role's password (a
// fingerprint of it, never the secret or the password), so migrate knows
// to set a new one after a rotation.
// PostgreSQL's own databases can never belong to a school.
export async function up (knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE schools ADD COLUMN role_key_id text')
  await knex.raw(`ALTER TABLE schools ADD CONSTRAINT schools_database_name_not_reserved
    CHECK (database_name NOT IN ('postgres', 'template0', 'template1'))`)
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE schools DROP CONSTRAINT schools_database_name_not_reserved')
  await knex.raw('ALTER TABLE schools DROP COLUMN role_key_id')
}
