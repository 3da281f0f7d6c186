import type { Knex } from 'knex'

/*
 * public_lunch_weeks: the public read model. A copy of every published week
 * of every school, written when staff publish, edit, unpublish or delete it,
 * so that anonymous readers are answered from the catalog and never make the
 * API open a connection to a school database.
 *
 * public_lunch_pending: one row per staff write that may change a school's
 * public copies. It is inserted just before the school's transaction commits
 * and removed once the copy is written; a row left behind (the copy write
 * failed, or the process died in between) is redone by the API's repairer.
 *
 * Every school already in the catalog gets a row dated from before any
 * write, so the weeks published before this migration are copied by the
 * first API process that starts after it.
 */
export async function up (knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE public_lunch_weeks (
      school_id  bigint NOT NULL REFERENCES schools (id) ON DELETE CASCADE,
      week_of    date NOT NULL,
      week       jsonb NOT NULL,
      copied_at  timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (school_id, week_of)
    )`)
  await knex.raw(`
    CREATE TABLE public_lunch_pending (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      school_id   bigint NOT NULL REFERENCES schools (id) ON DELETE CASCADE,
      created_at  timestamptz NOT NULL DEFAULT now()
    )`)
  await knex.raw('CREATE INDEX public_lunch_pending_school ON public_lunch_pending (school_id, created_at)')
  await knex.raw('CREATE INDEX public_lunch_pending_created ON public_lunch_pending (created_at)')
  await knex.raw("INSERT INTO public_lunch_pending (school_id, created_at) SELECT id, '-infinity' FROM schools")
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE public_lunch_pending')
  await knex.raw('DROP TABLE public_lunch_weeks')
}
