import { settingGroup } from './setting.js'

/** The most embedded servers one bench run starts (--servers); server k listens on BENCH_PG_PORT + k - 1. */
export const BENCH_SERVERS_MAX = 8

/**
 * The test suite's cluster listens on TEST_PG_PORT, and test files that
 * need a cluster of their own on the ports after it, up to this offset
 * (test/helpers/cluster.ts).
 */
export const TEST_PORT_OFFSETS = 10

export const tools = settingGroup({
  title: 'Tools and tests',
  about: 'Read from the environment only, never from .env, by `npm run bench` and the test suite. ' +
    'DATABASE_URL (above) points both at a server of your own instead of their embedded ones.',
  settings: [
    {
      name: 'BENCH_PG_PORT',
      kind: 'integer',
      default: 15439,
      min: 1024,
      max: 65535 - BENCH_SERVERS_MAX,
      meaning: "the port of the bench's own embedded server; with --servers N, server k listens on BENCH_PG_PORT + k - 1",
      readBy: ['bench', 'tests'],
      environmentOnly: true
    },
    {
      name: 'BENCH_PG_DIR',
      kind: 'text',
      default: '.data/bench-postgres',
      format: 'a folder, relative to the project root',
      meaning: "where the bench's embedded servers keep their data (server k adds -k); a larger disk for thousands of schools",
      readBy: ['bench', 'tests'],
      environmentOnly: true
    },
    {
      name: 'BENCH_CPU_PROF',
      kind: 'text',
      default: null,
      format: 'a folder',
      meaning: 'writes a V8 CPU profile of each API process the bench starts into this folder',
      readBy: ['bench'],
      environmentOnly: true
    },
    {
      name: 'BASELINE_DATABASE_URL',
      kind: 'postgresUrl',
      default: null,
      format: 'a `postgres://` URL',
      meaning: 'set by the bench itself: the database of its baseline server (scenario A), not for operators',
      readBy: ['bench'],
      environmentOnly: true
    },
    {
      name: 'BENCH_MIGRATIONS_DIR',
      kind: 'text',
      default: null,
      format: 'a folder',
      meaning: 'set by the bench itself: the app migrations of the migrate that scenario C times, not for operators',
      readBy: ['bench'],
      environmentOnly: true
    },
    {
      name: 'TEST_PG_PORT',
      kind: 'integer',
      default: 15433,
      min: 1024,
      max: 65535 - TEST_PORT_OFFSETS,
      meaning: `the port of the test suite's embedded cluster; test files with a cluster of their own take the ${TEST_PORT_OFFSETS} ports after it`,
      readBy: ['tests'],
      environmentOnly: true
    },
    {
      name: 'TEST_PG_DIR',
      kind: 'text',
      default: '.data/test-postgres',
      format: 'a folder, relative to the project root',
      meaning: "the test suite's cluster data folder; with TEST_PG_PORT, lets two suites run side by side",
      readBy: ['tests'],
      environmentOnly: true
    },
    {
      name: 'SCALEOUT_TESTS',
      kind: 'choice',
      values: ['on', 'off'],
      default: 'on',
      meaning: 'off skips the HAProxy and PgBouncer tests on purpose; on, they fail where the programs are missing',
      readBy: ['tests'],
      environmentOnly: true
    },
    {
      name: 'BROWSER_TESTS',
      kind: 'choice',
      values: ['on', 'off'],
      default: 'on',
      meaning: 'off skips the browser test on purpose; on, it fails where Chromium is missing',
      readBy: ['tests'],
      environmentOnly: true
    },
    {
      name: 'OPENAPI_SNAPSHOT',
      kind: 'choice',
      values: ['check', 'update'],
      default: 'check',
      meaning: 'update rewrites test/fixtures/openapi.json from the API, for a deliberate change of the API',
      readBy: ['tests'],
      environmentOnly: true
    }
  ]
})
