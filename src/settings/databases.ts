import { EVERY_COMMAND, settingGroup } from './setting.js'

const POSTGRES_URL = '`postgres://` or `postgresql://` URL with a host'
const SERVER_PAIRS = '`name=url`, comma-separated; names of lowercase letters, digits, `_` and `-`, starting with a letter'

export const catalog = settingGroup({
  title: 'Catalog',
  settings: [
    {
      name: 'DATABASE_URL',
      kind: 'postgresUrl',
      default: null,
      defaultText: 'unset: the embedded server',
      format: POSTGRES_URL,
      meaning: 'the catalog database (the list of schools); unset, the embedded PostgreSQL below',
      note: 'The catalog database (the list of schools). Leave unset to use the embedded PostgreSQL below. The database is created on first start if it is missing.',
      example: 'postgres://catalog_admin:secret@db.internal:5432/catalog',
      readBy: ['API', 'migrate', 'schools', 'bench', 'tests']
    },
    { name: 'CATALOG_POOL_SIZE', kind: 'integer', default: 5, min: 1, max: 100, meaning: 'connections the API keeps to the catalog', readBy: ['API'] },
    {
      name: 'CATALOG_CACHE_TTL_MS',
      kind: 'integer',
      default: 30_000,
      min: 0,
      max: 3_600_000,
      meaning: 'how long the API caches a catalog lookup, in milliseconds',
      readBy: ['API', 'schools']
    }
  ]
})

export const schoolDatabases = settingGroup({
  title: 'School databases',
  settings: [
    {
      name: 'TENANT_SERVERS',
      kind: 'serverMap',
      default: null,
      defaultText: '`default=<the catalog\'s server>`',
      format: SERVER_PAIRS,
      meaning: 'the PostgreSQL servers that hold school databases; a school names its server',
      note: 'Named PostgreSQL servers that hold school databases, as name=url pairs separated by commas; schools.server names one of them. ' +
        'The URLs need a user allowed to CREATE DATABASE; their database part is ignored. Default: one server called "default", the catalog\'s own server.',
      example: 'default=postgres://admin:secret@db-1.internal:5432,east=postgres://admin:secret@db-2.internal:5432',
      readBy: ['API', 'migrate', 'schools', 'bench']
    },
    {
      name: 'TENANT_POOLERS',
      kind: 'serverMap',
      default: null,
      defaultText: 'none',
      format: `${SERVER_PAIRS}; no user or password`,
      meaning: "the PgBouncer in front of a server, for the API's school connections only (see \"PgBouncer for school roles\")",
      note: 'The PgBouncer in front of a tenant server, as name=url pairs (no user or password: each school logs in with its own role). ' +
        "The API's school connections go there; migrate, move, backup and restore still go to the server itself. " +
        "Run `npm run migrate` after setting it, so the pooler's auth user may log in (docs/deploying.md, \"PgBouncer for school roles\").",
      example: 'default=postgres://127.0.0.1:6432',
      readBy: ['API', 'migrate']
    },
    {
      name: 'TENANT_POOL_SIZE',
      kind: 'integer',
      default: 5,
      min: 1,
      max: 100,
      meaning: 'the most connections one school may hold',
      note: 'The most connections one school may hold. A school\'s pool starts with one connection and grows only while its requests queue and the budget has room.',
      readBy: ['API']
    },
    {
      name: 'TENANT_CONNECTIONS_MAX',
      kind: 'budgets',
      default: null,
      defaultText: 'from the server, at most 100',
      format: '`150` for every server, `east=300` for one, or both: `150,east=300`; 1 to 999999',
      meaning: 'the connection budget of one API process on each tenant server',
      note: 'The connection budget: the most connections one API process holds to school databases on one tenant server, counting connections opening and closing. ' +
        'A number for every server, server=number for one, or both:\n  TENANT_CONNECTIONS_MAX=150,east=300\n' +
        'Unset, it is the smaller of 100 and what the server leaves (max_connections less reserved connections, the catalog\'s pool and a margin for migrate), read at start. ' +
        'A budget larger than the server allows stops the start. Size it to hold your active schools (docs/operators.md, "Connection budget").\n' +
        '(TENANT_POOLS_MAX is gone: set TENANT_CONNECTIONS_MAX = pools x pool size.)',
      example: '100',
      readBy: ['API']
    },
    {
      name: 'TENANT_IDLE_TIMEOUT_MS',
      kind: 'integer',
      default: 300_000,
      min: 1_000,
      max: 86_400_000,
      meaning: 'a school unused this long closes its last connection, in milliseconds',
      readBy: ['API']
    },
    {
      name: 'TENANT_CONNECT_CONCURRENCY',
      kind: 'integer',
      default: 8,
      min: 1,
      max: 256,
      meaning: 'new connections opening at once per tenant server (a fast ramp after a restart)',
      readBy: ['API']
    },
    {
      name: 'MIGRATE_CONCURRENCY',
      kind: 'integer',
      default: 8,
      min: 1,
      max: 256,
      meaning: "schools migrated at once on each server (clamped to that server's free connections); the API keeps room for them",
      readBy: ['API', 'migrate', 'schools', 'isolation']
    },
    {
      name: 'CREATE_DATABASE_STRATEGY',
      kind: 'choice',
      values: ['default', 'wal_log', 'file_copy'],
      default: 'file_copy',
      meaning: "how CREATE DATABASE copies its template on PostgreSQL 15+; `default`: the server's choice",
      note: 'How CREATE DATABASE copies (PostgreSQL 15+). file_copy is about 3.5x faster for small school databases (30 vs 107 ms each measured here) ' +
        'but forces a checkpoint per database; choose wal_log where checkpoints are costly, default for the server\'s own choice.',
      readBy: ['migrate']
    },
    {
      name: 'CREATE_DATABASE_COPY_METHOD',
      kind: 'choice',
      values: ['clone', 'copy'],
      default: 'clone',
      meaning: "how `file_copy` copies the template's files on PostgreSQL 18+ (`file_copy_method`); `clone` asks the kernel to copy or share them",
      note: 'clone has the kernel copy each file (copy_file_range on Linux, copyfile on macOS), or share its blocks on file systems that can (XFS with reflink, ' +
        'Btrfs, APFS); copy reads and writes it through PostgreSQL. Where CREATE DATABASE fails with "could not clone file", set copy. ' +
        'Figures: docs/operators.md, "5,000 schools on four servers".',
      readBy: ['migrate']
    },
    {
      name: 'TENANT_ROLE_SECRET',
      kind: 'text',
      default: null,
      minLength: 32,
      defaultText: 'a public development secret; required in production',
      meaning: "derives each school role's password (never stored); migrate and the API must share it",
      note: 'Each school database is reachable only by its own login role, whose password is an HMAC of the role name under this secret (never stored). ' +
        'migrate and the API must share it. Required in production; development uses a fixed, public development secret. To rotate: see docs/operators.md, "School roles".',
      example: 'another-long-random-string-of-32-or-more-characters',
      readBy: ['API', 'migrate', 'schools', 'pooler']
    }
  ]
})

export const embedded = settingGroup({
  title: 'Embedded PostgreSQL',
  about: 'Only when DATABASE_URL is unset: the server the project starts for itself, listening on 127.0.0.1.',
  settings: [
    {
      name: 'EMBEDDED_PG_DIR',
      kind: 'text',
      default: '.data/postgres',
      format: 'a folder, relative to the project root',
      meaning: 'its data folder, relative to the project root; git-ignored, kept between runs',
      readBy: ['API', 'migrate', 'schools']
    },
    { name: 'EMBEDDED_PG_PORT', kind: 'integer', default: 15432, min: 1024, max: 65535, meaning: 'its port, on the loopback address', readBy: ['API', 'migrate', 'schools'] },
    {
      name: 'EMBEDDED_PG_PASSWORD',
      kind: 'text',
      default: 'postgres',
      meaning: 'the password of its "postgres" superuser',
      readBy: ['API', 'migrate', 'schools']
    },
    { name: 'EMBEDDED_PG_MAX_CONNECTIONS', kind: 'integer', default: 200, min: 20, max: 10_000, meaning: 'its max_connections', readBy: ['API', 'migrate', 'schools'] },
    {
      name: 'EMBEDDED_PG_FSYNC',
      kind: 'boolean',
      default: true,
      meaning: '`false` trades crash safety of its data for speed (fine for throwaway data)',
      note: 'false trades crash safety of the embedded data for speed (fine for throwaway data).',
      readBy: ['API', 'migrate', 'schools']
    }
  ]
})

export const retired = settingGroup({
  title: 'Retired',
  about: 'Gone settings, still read so that one left in a .env stops the start with what replaced it.',
  retired: true,
  settings: [
    {
      name: 'TENANT_POOLS_MAX',
      kind: 'text',
      default: null,
      defaultText: '—',
      meaning: 'replaced by TENANT_CONNECTIONS_MAX (pools × TENANT_POOL_SIZE); set, it stops the start',
      readBy: EVERY_COMMAND
    }
  ]
})
