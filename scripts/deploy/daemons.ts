import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { projectRoot } from '../../src/config.js'
import { runAsOwner } from '../../src/postgres/embedded.js'
import { POOLER_ROLE, poolerPassword } from '../../src/postgres/roles.js'

/*
 * Debian's HAProxy and PgBouncer, run in the foreground from the files
 * under deploy/ as they are shipped, for the scale-out tests and bench G:
 * only addresses, ports and paths are rewritten (and, for a comparison, the
 * balance line).
 */

export const HAPROXY = '/usr/sbin/haproxy'
export const PGBOUNCER = '/usr/sbin/pgbouncer'

/** The binaries that are not installed, and how to get them; null when both are there. */
export function missingDaemons (): string | null {
  const missing = [HAPROXY, PGBOUNCER].filter((binary) => !existsSync(binary))
  return missing.length === 0 ? null : `${missing.join(' and ')} not found: install Debian's packages (apt-get install haproxy pgbouncer)`
}

/** A TCP port nobody listens on right now. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return address.port
}

interface Daemon {
  child: ChildProcessByStdio<null, Readable, Readable>
  output: () => string
  exited: Promise<number | null>
}

/** Starts a program in the foreground; resolves once it accepts connections on `port`. */
async function startDaemon (command: string, args: string[], port: number, { env, owner }: { env?: NodeJS.ProcessEnv, owner?: { uid: number, gid: number } }): Promise<Daemon> {
  const child = spawn(command, args, { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], ...owner })
  let output = ''
  const append = (chunk: Buffer): void => { output += chunk.toString() }
  child.stdout.on('data', append)
  child.stderr.on('data', append)
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
  const started = Date.now()
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${command} exited before it listened:\n${output}`)
    if (await accepts(port)) break
    if (Date.now() - started > 20_000) {
      child.kill('SIGKILL')
      throw new Error(`${command} did not listen on ${port} within 20 s:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return { child, output: () => output, exited }
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}

async function stopDaemon (daemon: Daemon): Promise<void> {
  if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGTERM')
  await daemon.exited
}

function rewrite (text: string, edits: Array<[RegExp, string]>): string {
  return edits.reduce((out, [pattern, replacement]) => {
    if (!pattern.test(out)) throw new Error(`the deploy file no longer has a line matching ${pattern}`)
    return out.replace(pattern, replacement)
  }, text)
}

/** A number set in deploy/pgbouncer.ini, such as default_pool_size. */
export function pgbouncerSetting (name: string): number {
  const value = new RegExp(`^${name} = (\\d+)$`, 'm').exec(readFileSync(path.join(projectRoot, 'deploy/pgbouncer.ini'), 'utf8'))?.[1]
  if (value === undefined) throw new Error(`deploy/pgbouncer.ini sets no ${name}`)
  return Number(value)
}

export interface PgBouncer {
  /** postgres://127.0.0.1:<port>: what TENANT_POOLERS names. */
  url: string
  /** SIGTERM: PgBouncer closes every connection at once. */
  stop: () => Promise<void>
  /** Starts it again on the same port, from the same files. */
  start: () => Promise<void>
  /** Stops it and removes its folder. */
  remove: () => Promise<void>
  output: () => string
}

/**
 * deploy/pgbouncer.ini in front of the server on `serverPort`, in `dir`,
 * with the auth_file `npm run pooler -- auth-file` writes for `roleSecret`.
 */
export async function startPgBouncer (dir: string, serverPort: number, roleSecret: string): Promise<PgBouncer> {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const port = await freePort()
  const authFile = path.join(dir, 'userlist.txt')
  const iniFile = path.join(dir, 'pgbouncer.ini')
  writeFileSync(iniFile, rewrite(readFileSync(path.join(projectRoot, 'deploy/pgbouncer.ini'), 'utf8'), [
    [/^\* = host=127\.0\.0\.1 port=5432$/m, `* = host=127.0.0.1 port=${serverPort}`],
    [/^listen_port = 6432$/m, `listen_port = ${port}`],
    [/^auth_file = \/etc\/pgbouncer\/userlist\.txt$/m, `auth_file = ${authFile}`]
  ]))
  writeFileSync(authFile, `"${POOLER_ROLE}" "${poolerPassword(roleSecret)}"\n`, { mode: 0o600 })
  // PgBouncer refuses to run as root, as PostgreSQL does: the same owner.
  const owner = runAsOwner()
  if (owner !== undefined) for (const file of [dir, iniFile, authFile]) chownSync(file, owner.uid, owner.gid)

  let daemon: Daemon | null = null
  const pgbouncer: PgBouncer = {
    url: `postgres://127.0.0.1:${port}`,
    start: async () => { daemon = await startDaemon(PGBOUNCER, [iniFile], port, owner === undefined ? {} : { owner }) },
    stop: async () => { if (daemon !== null) await stopDaemon(daemon) },
    remove: async () => {
      await pgbouncer.stop()
      rmSync(dir, { recursive: true, force: true })
    },
    output: () => daemon?.output() ?? ''
  }
  await pgbouncer.start()
  return pgbouncer
}

export interface HaProxy {
  /** http://127.0.0.1:<port> */
  address: string
  output: () => string
  stop: () => Promise<void>
}

export interface HaProxyOptions {
  /** The three API processes, host:port. */
  apis: readonly [string, string, string]
  /** The token's school claim as deploy/haproxy.cfg takes it: a JSON path after `$.`, dots escaped. */
  schoolClaimPath: string
  hostSuffix?: string
  /** The bench's comparison: round-robin instead of the shipped affinity. */
  roundRobin?: boolean
}

/** deploy/haproxy.cfg in front of three API processes; foreground, logging to our pipe. */
export async function startHaProxy (options: HaProxyOptions): Promise<HaProxy> {
  const port = await freePort()
  let configFile = path.join(projectRoot, 'deploy/haproxy.cfg')
  const dir = path.join(projectRoot, '.data', `haproxy-round-robin-${port}`)
  if (options.roundRobin === true) {
    mkdirSync(dir, { recursive: true })
    const variant = path.join(dir, 'haproxy.cfg')
    writeFileSync(variant, rewrite(readFileSync(configFile, 'utf8'), [[/^ {4}balance hdr\(X-Route-School\)$/m, '    balance roundrobin']]))
    configFile = variant
  }
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    HAPROXY_BIND: `127.0.0.1:${port}`,
    API_1: options.apis[0],
    API_2: options.apis[1],
    API_3: options.apis[2],
    SCHOOL_CLAIM_PATH: options.schoolClaimPath,
    ...(options.hostSuffix === undefined ? {} : { SCHOOL_HOST_SUFFIX: options.hostSuffix })
  }
  const daemon = await startDaemon(HAPROXY, ['-db', '-f', configFile], port, { env })
  const stop = async (): Promise<void> => {
    await stopDaemon(daemon)
    rmSync(dir, { recursive: true, force: true })
  }
  return { address: `http://127.0.0.1:${port}`, output: daemon.output, stop }
}
