import path from 'node:path'
import { projectRoot, type EmbeddedPostgresConfig } from '../../src/config.js'
import { readSettings } from '../../src/env-reader.js'
import { settings } from '../../src/settings/all.js'

const { testPort, testDir } = readSettings(process.env, (read) => ({ testPort: read.integer(settings.TEST_PG_PORT), testDir: read.text(settings.TEST_PG_DIR) }))

/*
 * The suite's own embedded cluster: apart from the development one (other
 * folder, other port), fsync off because its data is thrown away, and
 * roomy enough in connections for test files running side by side.
 * With DATABASE_URL set, the suite uses that server instead.
 */
export const testCluster: EmbeddedPostgresConfig = {
  // TEST_PG_DIR and TEST_PG_PORT let two suites run side by side. Every
  // fixed port of the project sits below Linux's ephemeral range
  // (32768-60999), where a client socket could already hold it.
  dataDir: path.resolve(projectRoot, testDir),
  port: clusterPort(0),
  password: 'postgres',
  maxConnections: 300,
  fsync: false
}

/**
 * The port of the suite's cluster (offset 0) or of a test file's own
 * cluster, counted from TEST_PG_PORT, so two checkouts running their
 * suites at once never meet on a port. Files run side by side, so each
 * offset belongs to one file: 1 postgres/embedded, 2 security/faults,
 * 3 fleet/template, 4 fleet/servers, 5 fleet/template-history,
 * 6 fleet/move, 7 fleet/rollout-stopped, 8 fleet/server-lost,
 * 9 scaleout/pgbouncer, 11 docs/tour, 12 and 13 bench/fleet-scale (the
 * bench's two servers).
 */
export function clusterPort (offset: number): number {
  return testPort + offset
}

export const SUITE_HOLDER = 'test-suite'

export const externalServerUrl = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === ''
  ? null
  : process.env.DATABASE_URL
