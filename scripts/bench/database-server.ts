import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadConfig, projectRoot } from '../../src/config.js'
import { databaseUrl } from '../../src/postgres/connection.js'
import { readSettings } from '../../src/env-reader.js'
import { attachEmbeddedPostgres, stopEmbeddedPostgres, type EmbeddedServer } from '../../src/postgres/embedded.js'
import { settings } from '../../src/settings/all.js'
import { BENCH_SERVERS_MAX } from '../../src/settings/tools.js'
import { say } from './report.js'
import { fileSystemOf } from './disk.js'

/**
 * Where the bench's embedded servers keep their data (BENCH_PG_DIR, so a
 * run of thousands of schools can go to a larger disk, and a test's run
 * beside a developer's); server k > 1 adds `-k`.
 */
export function benchDataDir (): string {
  return path.resolve(projectRoot, readSettings(process.env, (read) => read.text(settings.BENCH_PG_DIR)))
}

export interface DatabaseServers {
  /** Admin URLs of the servers that hold the bench's databases; the first holds the catalogs too. */
  urls: string[]
  /** A configured server (DATABASE_URL): the bench drops what it made there. */
  external: boolean
  release: () => void
}

/**
 * The configured server when DATABASE_URL is set, else `count` fresh
 * embedded ones of the bench's own, each on its own port and data folder
 * (fsync off, thrown away at the end).
 */
export async function openDatabaseServers (count: number, schools: number, { processes = 1, settle = false }: { processes?: number, settle?: boolean } = {}): Promise<DatabaseServers> {
  if (process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== '') {
    const config = loadConfig(process.env)
    return { urls: [databaseUrl(config.tenantServers?.default ?? process.env.DATABASE_URL, 'postgres')], external: true, release: () => {} }
  }
  // What an earlier run left running, whatever its number of servers.
  for (let k = 1; k <= BENCH_SERVERS_MAX; k++) await stopEmbeddedPostgres(dataDirOf(k))
  const fileSystem = fileSystemOf(path.dirname(benchDataDir()))
  say(`The servers' data goes to ${path.dirname(benchDataDir())}, on ${fileSystem} (BENCH_PG_DIR; C's creation times depend on it, see docs/operators.md).`)
  const note = fileSystem === 'ext4' ? fileSystemNote(removalsUnderWay(), secondsSinceRemoval()) : null
  if (note !== null) say(note)
  for (let k = 1; k <= BENCH_SERVERS_MAX; k++) removeInBackground(dataDirOf(k))
  if (note !== null && settle) {
    say('C times migrate, not the file system\'s recovery from the bench\'s own removal: waiting for that to pass…')
    const waited = await waitForInodeWindow()
    say(waited === null ? `Still not passed after ${SETTLE_MAX_S} s; going on.` : `Waited ${Math.round(waited)} s.`)
  }
  // Room for E's first curve, a connection per active school, beside the
  // rest; G's round-robin gives every school one in each API process.
  const maxConnections = Math.max(500, Math.ceil(schools / count) * processes + 300)
  const started: EmbeddedServer[] = []
  const release = (): void => {
    for (const embedded of started) embedded.release()
    for (let k = 1; k <= count; k++) {
      removeInBackground(dataDirOf(k))
      fs.rmSync(`${dataDirOf(k)}.leases`, { recursive: true, force: true })
    }
    say(`The embedded server${count > 1 ? 's are' : ' is'} stopped; the data folders are being removed in the background.`)
  }
  try {
    for (let k = 1; k <= count; k++) {
      started.push(await attachEmbeddedPostgres({ dataDir: dataDirOf(k), port: embeddedPort() + k - 1, password: 'postgres', maxConnections, fsync: false }, { log: () => {} }))
    }
  } catch (error) {
    release()
    throw error
  }
  return { urls: started.map((embedded) => embedded.url), external: false, release }
}

export function dataDirOf (k: number): string {
  return k === 1 ? benchDataDir() : `${benchDataDir()}-${k}`
}

/** Folders of earlier runs that a detached process is still deleting. */
function removalsUnderWay (): number {
  const parent = path.dirname(benchDataDir())
  if (!fs.existsSync(parent)) return 0
  return fs.readdirSync(parent).filter((name) => name.startsWith(`${path.basename(benchDataDir())}`) && name.includes('.removing-')).length
}

/** How long ext4 without a journal may pass over an inode freed earlier (fs/ext4/ialloc.c). */
const INODE_REUSE_WINDOW_S = 300

/**
 * Why C's creation times may suffer right now, or null. ext4 without a
 * journal does not reuse an inode freed in the last 60 s, or 300 s while
 * its inode table block is unwritten, and skips such inodes one by one
 * whenever it creates a file; a school database is some 250 files. Both the
 * removal and the window after it are this machine's, not migrate's.
 */
export function fileSystemNote (removing: number, secondsSinceRemoval: number | null): string | null {
  const why = '(it skips recently freed inodes one by one), and a school database is some 250 files'
  if (removing > 0) {
    return `An earlier run's data is still being removed (${removing} folder(s)). ext4 without a journal creates files slowly while many ` +
      `are deleted and for up to ${INODE_REUSE_WINDOW_S} s after ${why}: C's creation times suffer meanwhile.`
  }
  if (secondsSinceRemoval !== null && secondsSinceRemoval < INODE_REUSE_WINDOW_S) {
    return `An earlier run's data was removed ${Math.round(secondsSinceRemoval)} s ago. ext4 without a journal creates files slowly for up to ` +
      `${INODE_REUSE_WINDOW_S} s after many were deleted ${why}: C's creation times may suffer until then.`
  }
  return null
}

/**
 * Seconds until the window of fileSystemNote has passed: 0 once it has,
 * null while a removal is still running (its end starts the window).
 */
export function inodeWindowLeft (removing: number, secondsSinceRemoval: number | null): number | null {
  if (removing > 0) return null
  return secondsSinceRemoval === null ? 0 : Math.max(0, INODE_REUSE_WINDOW_S - secondsSinceRemoval)
}

/** Longest wait for it: a removal that never ends must not hold the bench forever. */
const SETTLE_MAX_S = 900

/** Seconds waited until the window passed, or null if it did not within SETTLE_MAX_S. */
async function waitForInodeWindow (): Promise<number | null> {
  const started = Date.now()
  for (;;) {
    const left = inodeWindowLeft(removalsUnderWay(), secondsSinceRemoval())
    const waited = (Date.now() - started) / 1000
    if (left === 0) return waited
    if (waited >= SETTLE_MAX_S) return null
    // A removal's end is seen by polling its folder; after it, the window is a known length.
    await sleep(Math.min(left ?? 5, SETTLE_MAX_S - waited) * 1000)
  }
}

/** Touched by the detached remover once it is done. */
function removedMarker (): string {
  return `${benchDataDir()}.removed`
}

function secondsSinceRemoval (): number | null {
  const marker = fs.statSync(removedMarker(), { throwIfNoEntry: false })
  return marker === undefined ? null : (Date.now() - marker.mtimeMs) / 1000
}

/** BENCH_PG_PORT, so that two checkouts can run the bench side by side. */
function embeddedPort (): number {
  return readSettings(process.env, (read) => read.integer(settings.BENCH_PG_PORT))
}

/**
 * A folder of thousands of databases holds hundreds of thousands of files,
 * and removing it takes minutes of disk time. It is renamed at once (so a
 * new run can start clean) and deleted by a detached process that outlives us.
 */
export function removeInBackground (folder: string): void {
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
  const script = `const fs = require('node:fs'); for (const f of ${JSON.stringify(doomed)}) fs.rmSync(f, { recursive: true, force: true }); ` +
    `fs.writeFileSync(${JSON.stringify(removedMarker())}, new Date().toISOString())`
  spawn(process.execPath, ['-e', script], { detached: true, stdio: 'ignore' }).unref()
}
