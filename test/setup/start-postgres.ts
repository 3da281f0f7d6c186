// tap runs this once before the test files: a fresh cluster, held by the
// suite so it stays up between files (stop-postgres.ts ends it), and the
// plain-JS copy of the project that tests start commands from.
import fs from 'node:fs'
import { attachEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/postgres/embedded.js'
import { SUITE_HOLDER, externalServerUrl, testCluster } from '../helpers/cluster.js'
import { writeCompiledCopy } from '../helpers/compiled.js'

await writeCompiledCopy()

if (externalServerUrl === null) {
  await stopEmbeddedPostgres(testCluster.dataDir)
  fs.rmSync(testCluster.dataDir, { recursive: true, force: true })
  await attachEmbeddedPostgres(testCluster, { holder: SUITE_HOLDER, log: () => {} })
}
