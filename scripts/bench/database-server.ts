import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { loadConfig, projectRoot } from '../../src/config.js'
import { parseWholeNumber, wholeNumberProblem } from '../../src/cli/whole-number.js'
import { databaseUrl } from '../../src/postgres/connection.js'
import { attachEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/postgres/embedded.js'
import { say } from './report.js'

const EMBEDDED_DIR = path.join(projectRoot, '.data/bench-postgres')
const DEFAULT_PORT = 15439

export interface DatabaseServer {
  /** Admin URL of the server that holds the bench's databases. */
  url: string
  /** A configured server (DATABASE_URL): the bench drops what it made there. */
  external: boolean
  release: () => void
}

/**
 * The configured server when DATABASE_URL is set, else a fresh embedded
 * one of the bench's own (fsync off, thrown away at the end).
 */
export async function openDatabaseServer (schools: number, { processes = 1 }: { processes?: number } = {}): Promise<DatabaseServer> {
  if (process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== '') {
    const config = loadConfig(process.env)
    return { url: databaseUrl(config.tenantServers?.default ?? process.env.DATABASE_URL, 'postgres'), external: true, release: () => {} }
  }
  await stopEmbeddedPostgres(EMBEDDED_DIR)
  removeInBackground(EMBEDDED_DIR)
  // Room for E's first curve, a connection per active school, beside the
  // rest; G's round-robin gives every school one in each API process.
  const maxConnections = Math.max(500, schools * processes + 300)
  const embedded = await attachEmbeddedPostgres({ dataDir: EMBEDDED_DIR, port: embeddedPort(), password: 'postgres', maxConnections, fsync: false }, { log: () => {} })
  return {
    url: embedded.url,
    external: false,
    release: () => {
      embedded.release()
      removeInBackground(EMBEDDED_DIR)
      fs.rmSync(`${EMBEDDED_DIR}.leases`, { recursive: true, force: true })
      say('The embedded server is stopped; its data folder is being removed in the background.')
    }
  }
}

/** BENCH_PG_PORT, so that two checkouts can run the bench side by side. */
function embeddedPort (): number {
  const raw = process.env.BENCH_PG_PORT
  if (raw === undefined || raw === '') return DEFAULT_PORT
  const port = parseWholeNumber(raw, 1024, 65535)
  if (port === null) throw new Error(wholeNumberProblem('BENCH_PG_PORT', raw, 1024, 65535))
  return port
}

/**
 * A folder of thousands of databases holds hundreds of thousands of files,
 * and removing it takes minutes of disk time. It is renamed at once (so a
 * new run can start clean) and deleted by a detached process that outlives us.
 */
function removeInBackground (folder: string): void {
  // Also what an earlier run left half removed (say, the machine stopped).
  const parent = path.dirname(folder)
  const leftovers = fs.existsSync(parent)
    ? fs.readdirSync(parent).filter((name) => name.startsWith(`${path.basename(folder)}.removing-`)).map((name) => path.join(parent, name))
    : []
  const doomed = [...leftovers]
  if (fs.existsSync(folder)) {
    const trash = `${folder}.removing-${process.pid}-${Date.now()}`
    fs.renameSync(folder, trash)
    doomed.push(trash)
  }
  if (doomed.length === 0) return
  const script = `for (const f of ${JSON.stringify(doomed)}) require('node:fs').rmSync(f, { recursive: true, force: true })`
  spawn(process.execPath, ['-e', script], { detached: true, stdio: 'ignore' }).unref()
}
