import fs from 'node:fs'
import path from 'node:path'
import type { Test } from 'tap'
import { projectRoot } from '../../src/config.js'
import { attachEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/postgres/embedded.js'
import { clusterPort } from './cluster.js'

/**
 * A PostgreSQL cluster of one test file's own, in `.data/<name>` on
 * clusterPort(offset): wiped first (leftovers of an interrupted run) and
 * again when the file's tests end. Resolves to its server URL.
 */
export async function privateCluster (t: Test, name: string, offset: number): Promise<string> {
  const dataDir = path.resolve(projectRoot, '.data', name)
  const wipe = async (): Promise<void> => {
    await stopEmbeddedPostgres(dataDir)
    fs.rmSync(dataDir, { recursive: true, force: true })
    fs.rmSync(`${dataDir}.leases`, { recursive: true, force: true })
  }
  await wipe()
  t.teardown(wipe)
  const cluster = { dataDir, port: clusterPort(offset), password: 'postgres', maxConnections: 100, fsync: false }
  return (await attachEmbeddedPostgres(cluster, { holder: name, log: () => {} })).url
}
