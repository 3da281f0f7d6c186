import fs from 'node:fs'
import path from 'node:path'
import type { Test } from 'tap'
import { projectRoot, type EmbeddedPostgresConfig } from '../../src/config.js'
import { attachEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/postgres/embedded.js'
import { clusterPort } from './cluster.js'

/** Where a file's own cluster lives and listens: for a test that stops it and starts it again. */
export function privateClusterConfig (name: string, offset: number): EmbeddedPostgresConfig {
  return { dataDir: path.resolve(projectRoot, '.data', name), port: clusterPort(offset), password: 'postgres', maxConnections: 100, fsync: false }
}

/**
 * A PostgreSQL cluster of one test file's own, in `.data/<name>` on
 * clusterPort(offset): wiped first (leftovers of an interrupted run) and
 * again when the file's tests end. Resolves to its server URL.
 */
export async function privateCluster (t: Test, name: string, offset: number): Promise<string> {
  const cluster = privateClusterConfig(name, offset)
  const dataDir = cluster.dataDir
  const wipe = async (): Promise<void> => {
    await stopEmbeddedPostgres(dataDir)
    fs.rmSync(dataDir, { recursive: true, force: true })
    fs.rmSync(`${dataDir}.leases`, { recursive: true, force: true })
  }
  await wipe()
  t.teardown(wipe)
  return (await attachEmbeddedPostgres(cluster, { holder: name, log: () => {} })).url
}
