import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'
import type { Knex } from 'knex'
import { quoteIdentifier } from './names.js'

/*
 * Every school database is reachable only through its own login role.
 *
 * Passwords are never stored: each is an HMAC of the role name under
 * TENANT_ROLE_SECRET, so migrate (which sets it) and the API (which logs in
 * with it) derive the same one. PostgreSQL is sent only a SCRAM verifier
 * computed here, so not even its statement log sees the password.
 *
 * The catalog keeps, per school, the id of the secret its password was set
 * with (a fingerprint, not the secret): after a rotation migrate sees the
 * mismatch and sets the new password.
 */

const ROLE_PREFIX = 'school_'

/** The login role of a school database: `school_<database>`, hashed to fit 63 bytes. */
export function schoolRoleName (databaseName: string): string {
  const plain = `${ROLE_PREFIX}${databaseName}`
  if (Buffer.byteLength(plain) <= 63) return plain
  const digest = createHash('sha256').update(databaseName).digest('hex').slice(0, 8)
  return `${ROLE_PREFIX}${databaseName.slice(0, 63 - ROLE_PREFIX.length - 9)}_${digest}`
}

export function schoolRolePassword (secret: string, role: string): string {
  return createHmac('sha256', secret).update(`school-role-password:${role}`).digest('base64url')
}

/** Names a secret without revealing it, so the catalog can tell which one set a password. */
export function roleKeyId (secret: string): string {
  return createHmac('sha256', secret).update('school-role-key-id').digest('hex').slice(0, 16)
}

/*
 * PBKDF2 iterations in a school role's verifier. Stretching a password makes
 * each guess at it dearer, which matters for passwords people choose. These
 * are 256-bit HMAC outputs: no guessing reaches them at 1 iteration or 4096.
 * The client does the stretching at every login, and the API logs in once per
 * new pool connection: at PostgreSQL's default of 4096 it is a noticeable
 * part of opening a connection (docs/operators.md, "School roles").
 */
export const SCHOOL_ROLE_SCRAM_ITERATIONS = 1

/** A SCRAM-SHA-256 verifier in PostgreSQL's rolpassword format (RFC 5802/7677). */
export function scramVerifier (password: string, { salt = randomBytes(16), iterations = SCHOOL_ROLE_SCRAM_ITERATIONS } = {}): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

const VERIFIER_PATTERN = /^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/

export type RoleOutcome = 'created' | 'existed' | 'updated'

function checkedVerifier (password: string): string {
  const verifier = scramVerifier(password)
  // DDL takes no bind parameters; the verifier is base64 and $ : only.
  if (!VERIFIER_PATTERN.test(verifier)) throw new Error('unexpected SCRAM verifier format')
  return verifier
}

const ROLE_ATTRIBUTES = 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS'

/** CREATE or ALTER a school's role: it may log in and nothing else. */
function roleSql (verb: 'CREATE' | 'ALTER', role: string, verifier: string): string {
  return `${verb} ROLE ${quoteIdentifier(role)} ${ROLE_ATTRIBUTES} PASSWORD '${verifier}'`
}

export function createRoleSql (role: string, password: string): string {
  return roleSql('CREATE', role, checkedVerifier(password))
}

/**
 * Creates the role, or sets its password when `setPassword` (its secret
 * changed). Role attributes allow logging in and nothing else.
 */
export async function ensureSchoolRole (db: Knex, role: string, password: string, setPassword: boolean): Promise<RoleOutcome> {
  const verifier = checkedVerifier(password)
  const exists = (await db.raw<{ rows: unknown[] }>('SELECT 1 FROM pg_roles WHERE rolname = ?', [role])).rows.length > 0
  if (!exists) {
    try {
      await db.raw(roleSql('CREATE', role, verifier))
      return 'created'
    } catch (error) {
      // Created by a concurrent run of another migrate; set the password below.
      const code = (error as { code?: string }).code
      if (code !== '42710' && code !== '23505') throw error
    }
  } else if (!setPassword) {
    return 'existed'
  }
  // The attributes too: a role found in place (say, made by hand) may lack LOGIN or have more than it should.
  await db.raw(roleSql('ALTER', role, verifier))
  return 'updated'
}

/**
 * Only the school's role may connect to its database (and nobody gets
 * TEMPORARY through PUBLIC), besides the pooler's auth user, which runs the
 * database's password lookup and nothing else. The role's sessions start
 * with the statement timeout, whoever opens them: the API directly, or
 * PgBouncer, which passes no such setting on. Run with a connection to that
 * database, so it is serialised by the database's migration lock:
 * concurrent GRANTs on one object fail with "tuple concurrently updated".
 */
export async function restrictDatabase (db: Knex, databaseName: string, role: string): Promise<void> {
  await db.raw(batch(restrictDatabaseSql(databaseName, role)))
}

/**
 * Statements without parameters sent as one query: one round trip, run by
 * PostgreSQL as one transaction. Migrate sends these to every school.
 */
function batch (statements: string[]): string {
  return statements.join(';\n')
}

export function restrictDatabaseSql (databaseName: string, role: string): string[] {
  const database = quoteIdentifier(databaseName)
  return [
    `REVOKE CONNECT, TEMPORARY ON DATABASE ${database} FROM PUBLIC`,
    `GRANT CONNECT ON DATABASE ${database} TO ${quoteIdentifier(role)}`,
    ENSURE_POOLER_ROLE_SQL,
    `GRANT CONNECT ON DATABASE ${database} TO ${POOLER_ROLE}`,
    `ALTER ROLE ${quoteIdentifier(role)} SET statement_timeout = ${SCHOOL_STATEMENT_TIMEOUT_MS}`
  ]
}

/** A statement of a school's session that runs longer is cancelled by PostgreSQL. */
export const SCHOOL_STATEMENT_TIMEOUT_MS = 15_000

/**
 * What a school session the API opens sends at its start: the statement
 * timeout only straight to PostgreSQL. PgBouncer refuses that setting, and
 * the school's role carries it anyway (restrictDatabaseSql).
 */
export function schoolStartup (pooled: boolean): { statementTimeoutMillis?: number } {
  return pooled ? {} : { statementTimeoutMillis: SCHOOL_STATEMENT_TIMEOUT_MS }
}

/**
 * PgBouncer's auth_user (deploy/pgbouncer.ini): it runs each school
 * database's password lookup, and may read PgBouncer's own figures
 * (stats_users) for the API's start-up check. No school role can have this
 * name: theirs all start with `school_`.
 */
export const POOLER_ROLE = 'tenant_pooler'

/** Made without login; migrate lets it log in on the servers that have a pooler. */
const ENSURE_POOLER_ROLE_SQL = `DO $ensure$ BEGIN
  CREATE ROLE ${POOLER_ROLE} NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $ensure$`

/** The pooler's password, derived like a school role's: PgBouncer's auth_file holds it. */
export function poolerPassword (secret: string): string {
  return schoolRolePassword(secret, POOLER_ROLE)
}

/**
 * The pooler's role on a server: made if missing, then allowed to log in
 * with its password where a pooler is configured, and refused login where
 * none is. One run at a time (an advisory lock in the maintenance
 * database): two ALTERs of one role at once fail.
 */
export async function preparePoolerRole (admin: Knex, pooled: boolean, secret: string): Promise<void> {
  await admin.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(7311001, 2)')
    await trx.raw(ENSURE_POOLER_ROLE_SQL)
    await trx.raw(pooled
      ? `ALTER ROLE ${POOLER_ROLE} ${ROLE_ATTRIBUTES} PASSWORD '${checkedVerifier(poolerPassword(secret))}'`
      : `ALTER ROLE ${POOLER_ROLE} NOLOGIN PASSWORD NULL`)
  })
}

/**
 * Row access to the app's tables, now and for tables later migrations add;
 * read-only on knex's own bookkeeping. No DDL: the role owns nothing.
 */
export async function grantTableAccess (db: Knex, role: string): Promise<void> {
  await db.raw(batch(tableAccessSql(role)))
}

/**
 * Everything a school's role is given once its database is migrated: the
 * database closed to others, then row access to its tables. Statements
 * without parameters, for a batch or a transaction of their own.
 */
export function schoolAccessSql (databaseName: string, role: string): string[] {
  return [...restrictDatabaseSql(databaseName, role), ...tableAccessSql(role)]
}

export function tableAccessSql (role: string): string[] {
  const grantee = quoteIdentifier(role)
  return [
    `GRANT USAGE ON SCHEMA public TO ${grantee}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${grantee}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${grantee}`,
    `REVOKE INSERT, UPDATE, DELETE ON knex_migrations, knex_migrations_lock FROM ${grantee}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${grantee}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${grantee}`
  ]
}

/** The URL a school's pool logs in with: its role on its database. */
export function schoolRoleUrl (serverUrl: string, databaseName: string, secret: string): string {
  const url = new URL(serverUrl)
  const role = schoolRoleName(databaseName)
  url.username = encodeURIComponent(role)
  url.password = encodeURIComponent(schoolRolePassword(secret, role))
  url.pathname = `/${encodeURIComponent(databaseName)}`
  return url.toString()
}
