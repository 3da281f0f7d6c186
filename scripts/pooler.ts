/*
 * npm run pooler -- auth-file
 *
 * Prints PgBouncer's auth_file line for its auth user (deploy/pgbouncer.ini):
 * the one password PgBouncer keeps. School roles are looked up in their own
 * database (auth_query), never listed.
 */
import { parseCommandLine, UsageError } from '../src/cli/command-line.js'
import { runProgram } from '../src/cli/program.js'
import { loadConfigOrExit } from '../src/config.js'
import { POOLER_ROLE, poolerPassword } from '../src/postgres/roles.js'

const USAGE = `Usage: npm run -s pooler -- auth-file > /etc/pgbouncer/userlist.txt

  auth-file    the auth_file line of PgBouncer's auth user, ${POOLER_ROLE}, whose
               password derives from TENANT_ROLE_SECRET (keep the file 0600)`

await runProgram(async () => {
  const config = loadConfigOrExit()
  const { positionals } = parseCommandLine({ usage: USAGE, options: {}, positionals: true })
  if (positionals.length !== 1 || positionals[0] !== 'auth-file') throw new UsageError('Name the one command: auth-file.', USAGE)
  // PgBouncer logs in as this role itself, so it needs the password, not a verifier.
  process.stdout.write(`"${POOLER_ROLE}" "${poolerPassword(config.tenantRoleSecret)}"\n`)
  return 0
})
