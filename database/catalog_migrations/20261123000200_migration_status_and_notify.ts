import type { Knex } from 'knex'

/*
 * school_migration_status: what the last `npm run migrate` did to each
 * school. It sits beside schools, not in it, so that recording a run does
 * not fire the change notification that makes API processes drop the
 * school's cache entry and pool.
 *
 * school_changed: every insert, update and delete of a school notifies
 * listeners (the API processes) with the slug, server and database before
 * and after, so a suspension or a move takes effect at once instead of
 * after the cache TTL.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE school_migration_status (
      school_id      bigint PRIMARY KEY REFERENCES schools (id) ON DELETE CASCADE,
      migration      text,
      migrated_at    timestamptz,
      last_error     text,
      last_run_at    timestamptz NOT NULL DEFAULT now()
    )`)
  await knex.raw(`
    CREATE FUNCTION schools_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('school_changed', json_build_object(
        'slugs', array_remove(ARRAY[
          CASE WHEN TG_OP <> 'INSERT' THEN OLD.slug END,
          CASE WHEN TG_OP <> 'DELETE' THEN NEW.slug END], NULL),
        'databases', array_remove(ARRAY[
          CASE WHEN TG_OP <> 'INSERT' THEN OLD.server || '/' || OLD.database_name END,
          CASE WHEN TG_OP <> 'DELETE' THEN NEW.server || '/' || NEW.database_name END], NULL)
      )::text);
      RETURN NULL;
    END $$`)
  await knex.raw(`
    CREATE TRIGGER schools_notify_change AFTER INSERT OR UPDATE OR DELETE ON schools
    FOR EACH ROW EXECUTE FUNCTION schools_notify_change()`)
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER schools_notify_change ON schools')
  await knex.raw('DROP FUNCTION schools_notify_change()')
  await knex.raw('DROP TABLE school_migration_status')
}
