import { SCHOOL_NAME_MAX } from '../../src/fleet/school-admin.js'

export const USAGE = `Usage: npm run schools -- <command> [options]

Commands:
  list [--status S] [--server NAME] [--state S]    the schools: status, server, migration state
  add <slug> --name "<name>" [--server NAME] [--database NAME] [--no-migrate] [--no-seed]
                                                   add a school and provision its database
  suspend <slug>                                   stop serving a school
  resume <slug>                                    serve it again
  drop <slug> --yes                                remove a suspended school: database, role, catalog row
  exec <script.ts> [--school <slug>]... [--concurrency N] [--include-suspended]
                                                   run a task script on every school
  move <slug> --to NAME [--keep-source]            move a school's database to another server
  backup <slug> [--out FILE]                       write one school's data to one file
  restore <file> --as <slug> [--server NAME] [--name "<name>"] [--database NAME] [--replace]
                                                   make a school from a backup file

npm run schools -- <command> --help describes one command.`

export const COMMAND_USAGE = {
  list: `Usage: npm run schools -- list [--status active|suspended] [--server NAME] [--state current|behind|failed|never]

Every school in the catalog with its server, status and migration state as
the last npm run migrate recorded it, then the count per state.

  --status <status>   only active, or only suspended, schools
  --server <name>     only the schools on this server
  --state <state>     current: at the latest app migration; behind: one is missing;
                      failed: the last migrate failed; never: not migrated yet`,

  add: `Usage: npm run schools -- add <slug> --name "<name>" [--server NAME] [--database NAME] [--no-migrate] [--no-seed]

Adds the school to the catalog (created when missing), then creates its
database and role, runs the app migrations and then its seeds
(database/seeds/), for this school only.

  --name <name>       the school's name, 1 to ${SCHOOL_NAME_MAX} characters (required)
  --server <name>     a server of TENANT_SERVERS. Without it the school goes to the
                      configured server holding the fewest schools (of any status);
                      a tie goes to the server listed first in TENANT_SERVERS
  --database <name>   its database (default: school_<slug>, with - turned into _)
  --no-migrate        only add the catalog row; npm run migrate provisions it later
  --no-seed           provision it without seeds, now and later

The slug and the database name may hold lowercase letters, digits, _ and -,
at most 63 characters.`,

  suspend: `Usage: npm run schools -- suspend <slug>

Marks the school suspended: the API refuses its requests (403 SCHOOL_SUSPENDED).
Running API processes hear of it through the catalog's notifications, and at
the latest when their catalog cache entry expires (CATALOG_CACHE_TTL_MS).`,

  resume: `Usage: npm run schools -- resume <slug>

Marks a suspended school active again; the API serves it once its processes
hear of it (at once, or when their catalog cache entry expires).`,

  drop: `Usage: npm run schools -- drop <slug> --yes

Removes a school for good: its database (open connections are ended), its
login role and its catalog row. Only a suspended school can be dropped.
Without --yes it only says what it would remove.`,

  exec: `Usage: npm run schools -- exec <script.ts> [--school <slug>]... [--concurrency N] [--include-suspended]

Runs a task script on every active school and prints one line per school.
The script (a path relative to the current directory) exports a default
async function ({ school, db }); db is a connection to the school's database
as the school's own role. See scripts/tasks/ for examples. Exit code 1 when
any school failed.

  --school <slug>       only this school (repeatable)
  --concurrency <n>     schools at once (default MIGRATE_CONCURRENCY, 8)
  --include-suspended   run on suspended schools too (they are skipped by default)`,

  move: `Usage: npm run schools -- move <slug> --to NAME [--keep-source]

Moves the school's database to another server of TENANT_SERVERS: builds it
there at the same migration (from the template, or by migrating) with the
school's role, copies every table while the school's writes are refused
(the API answers 503 SCHOOL_MOVING; reads go on), checks every table's row
count and checksum on both sides, and switches the catalog. Running API
processes follow at once. The source database and role are then dropped.
A failure at any step leaves the school on its server, writable, and
removes what was built on the target; the move can simply be run again.
A suspended school may be moved; it stays suspended.

  --to <name>       the server to move to (required)
  --keep-source     keep the source database and role (writes still refused
                    there) instead of dropping them`,

  backup: `Usage: npm run schools -- backup <slug> [--out FILE]

Writes every table of the school to one file: a manifest (format version,
school, migration, each table's row count and checksum, time), then each
table's rows in COPY format, all read in one consistent snapshot while the
school keeps working.

  --out <file>      where to write (default: <slug>-<time>.schoolbackup in the
                    current directory); an existing file is never overwritten`,

  restore: `Usage: npm run schools -- restore <file> --as <slug> [--server NAME] [--name "<name>"] [--database NAME] [--replace]

Makes a new school from a backup file: checks the whole file first, then
creates its database and role, applies the migrations up to the backup's,
loads the rows, checks each table against the manifest, applies the
remaining migrations, and adds the school to the catalog. A file that is
cut short, altered, or from a newer release is refused, naming the table,
and a failure leaves nothing behind.

  --as <slug>        the school's slug (required); it must not exist, unless --replace
  --server <name>    where its database goes (default: the server with the fewest schools,
                     or the replaced school's)
  --name <name>      its name (default: the name in the backup)
  --database <name>  its database (default: school_<slug>)
  --replace          the slug exists: freeze its writes, save its data next to the file,
                     restore beside it, switch the catalog to the restored database, and
                     drop the old one; a failure leaves it as it was`
} as const

export type CommandName = keyof typeof COMMAND_USAGE

export const COMMAND_NAMES = Object.keys(COMMAND_USAGE) as CommandName[]
