import type { Knex } from 'knex'

/*
 * What PgBouncer needs to log school roles in (deploy/pgbouncer.ini).
 * PgBouncer 1.18 has no auth_dbname: its auth_query runs in the database the
 * client asked for, logged in as its auth_user, `tenant_pooler`. So every
 * school database carries the lookup; new ones get it from the template.
 *
 * The lookup answers for one role only: the one that may connect to this
 * database (migrate revokes CONNECT from PUBLIC), so a school's role asking
 * for another school's database is unknown there. It gives no secret for a
 * role that cannot log in or whose VALID UNTIL has passed (PgBouncer's
 * CVE-2025-2291), nor for one with any power beyond LOGIN. It runs as its
 * owner, the migrating superuser, the only one who may read pg_authid;
 * `tenant_pooler` may run it and read nothing else.
 *
 * Written out in full, not imported: a migration is a record of what ran.
 */
const ROLE = 'tenant_pooler'

// Also made by migrate before any school; here for a database migrated by
// other means. Two schools migrated at once may both try.
const ENSURE_ROLE = `DO $ensure$ BEGIN
  CREATE ROLE ${ROLE} NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $ensure$`

const GRANT_CONNECT = `DO $grant$ BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO ${ROLE}', current_database());
END $grant$`

const REVOKE_CONNECT = `DO $revoke$ BEGIN
  EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM ${ROLE}', current_database());
END $revoke$`

export async function up (knex: Knex): Promise<void> {
  await knex.raw(ENSURE_ROLE)
  await knex.raw(`CREATE SCHEMA ${ROLE}`)
  await knex.raw(`REVOKE ALL ON SCHEMA ${ROLE} FROM PUBLIC`)
  await knex.raw(`
    CREATE FUNCTION ${ROLE}.lookup(p_user text, OUT usename name, OUT passwd text) RETURNS SETOF record
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $lookup$
      SELECT a.rolname, a.rolpassword
      FROM pg_catalog.pg_authid a
      WHERE a.rolname = p_user
        AND a.rolname <> '${ROLE}'
        AND a.rolcanlogin
        AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil > now())
        AND NOT (a.rolsuper OR a.rolcreaterole OR a.rolcreatedb OR a.rolreplication OR a.rolbypassrls)
        AND has_database_privilege(a.oid, current_database(), 'CONNECT')
    $lookup$`)
  await knex.raw(`REVOKE ALL ON FUNCTION ${ROLE}.lookup(text) FROM PUBLIC`)
  await knex.raw(`GRANT USAGE ON SCHEMA ${ROLE} TO ${ROLE}`)
  await knex.raw(`GRANT EXECUTE ON FUNCTION ${ROLE}.lookup(text) TO ${ROLE}`)
  await knex.raw(GRANT_CONNECT)
}

export async function down (knex: Knex): Promise<void> {
  await knex.raw(`DROP SCHEMA ${ROLE} CASCADE`)
  await knex.raw(REVOKE_CONNECT)
}
