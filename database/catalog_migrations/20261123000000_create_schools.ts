import type { Knex } from 'knex'

// Slugs and database names end up in URLs, tokens and SQL identifiers, so
// the catalog itself refuses anything but a short, plain name. PostgreSQL
// would silently cut a longer identifier at 63 bytes.
export async function up (knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE schools (
      id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      slug          text NOT NULL,
      name          text NOT NULL,
      database_name text NOT NULL,
      server        text NOT NULL DEFAULT 'default',
      status        text NOT NULL DEFAULT 'active',
      created_at    timestamptz NOT NULL DEFAULT now(),
      updated_at    timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT schools_slug_key UNIQUE (slug),
      CONSTRAINT schools_database_name_key UNIQUE (database_name),
      CONSTRAINT schools_slug_format CHECK (slug ~ '^[a-z0-9_-]+$' AND octet_length(slug) <= 63),
      CONSTRAINT schools_database_name_format CHECK (database_name ~ '^[a-z0-9_-]+$' AND octet_length(database_name) <= 63),
      CONSTRAINT schools_name_present CHECK (length(btrim(name)) BETWEEN 1 AND 200),
      CONSTRAINT schools_server_format CHECK (server ~ '^[a-z][a-z0-9_-]{0,62}$'),
      CONSTRAINT schools_status_known CHECK (status IN ('active', 'suspended'))
    )`)
  await knex.raw(`
    CREATE FUNCTION schools_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      NEW.updated_at := now();
      RETURN NEW;
    END $$`)
  await knex.raw(`
    CREATE TRIGGER schools_touch_updated_at BEFORE UPDATE ON schools
    FOR EACH ROW EXECUTE FUNCTION schools_touch_updated_at()`)
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE schools')
  await knex.raw('DROP FUNCTION schools_touch_updated_at()')
}
