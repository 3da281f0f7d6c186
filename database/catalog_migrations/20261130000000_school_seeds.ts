import type { Knex } from 'knex'

/*
 * Seeds run once per school, the first time migrate provisions it.
 *
 * school_seeds: one row per seed that ran for a school, written in the
 * same stretch of time as the seed's own transaction commits, so that no
 * seed ever runs twice.
 *
 * school_migration_status.seeding: whether the school's seeds are still to
 * run (pending), have run (done) or were turned off when it was
 * provisioned (skipped); NULL for schools provisioned before seeds
 * existed, which never get any. It sits beside the migration state, not on
 * schools, so that recording it does not make API processes drop the
 * school's pool.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE school_seeds (
      school_id  bigint NOT NULL REFERENCES schools (id) ON DELETE CASCADE,
      seed       text NOT NULL,
      ran_at     timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (school_id, seed)
    )`)
  await knex.raw(`ALTER TABLE school_migration_status ADD COLUMN seeding text
    CONSTRAINT school_migration_status_seeding_known CHECK (seeding IN ('pending', 'done', 'skipped'))`)
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE school_migration_status DROP COLUMN seeding')
  await knex.raw('DROP TABLE school_seeds')
}
