import { isIP } from 'node:net'
import { parseWholeNumber, wholeNumberProblem } from './cli/whole-number.js'

export type Env = Record<string, string | undefined>

/**
 * TENANT_CONNECTIONS_MAX as written: `150` for every server, `east=300`
 * for one, or both (`150,east=300`). Null where it is not set: the budget
 * is then worked out from the server at start.
 */
export interface ConnectionBudgets {
  all: number | null
  servers: Record<string, number>
}

export const SERVER_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,62}$/

// One TENANT_CONNECTIONS_MAX entry: a number, or server=number with the server
// named as TENANT_SERVERS names it (the same rule, without its anchors).
const BUDGET_ENTRY = new RegExp(`^(?:(${SERVER_NAME_PATTERN.source.replace(/^\^|\$$/g, '')})=)?(\\d{1,6})$`)

/**
 * Reads one setting at a time from the environment, in the shape it
 * should have. A bad value is not thrown: its problem, naming the
 * variable, goes to `problems` and the fallback is returned, so that every
 * problem of a .env is reported at once.
 */
export class EnvReader {
  constructor (private readonly env: Env, private readonly problems: string[]) {}

  string (name: string): string | null {
    const value = this.env[name]?.trim()
    return value === undefined || value === '' ? null : value
  }

  integer (name: string, fallback: number, min: number, max: number): number {
    const raw = this.string(name)
    if (raw === null) return fallback
    const value = parseWholeNumber(raw, min, max)
    if (value === null) this.problems.push(wholeNumberProblem(name, raw, min, max))
    return value ?? fallback
  }

  boolean (name: string, fallback: boolean): boolean {
    const raw = this.string(name)
    if (raw === null) return fallback
    if (/^(true|1|yes|on)$/i.test(raw)) return true
    if (/^(false|0|no|off)$/i.test(raw)) return false
    this.problems.push(`${name} must be true or false (got "${raw}")`)
    return fallback
  }

  oneOf<T extends string> (name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.string(name)
    if (raw === null) return fallback
    if ((allowed as readonly string[]).includes(raw)) return raw as T
    this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${raw}")`)
    return fallback
  }

  list (name: string): string[] {
    const raw = this.string(name)
    if (raw === null) return []
    return raw.split(',').map((item) => item.trim()).filter((item) => item !== '')
  }

  /**
   * `false`, `true`, or addresses, CIDRs and proxy-addr's names (loopback, …).
   * No hop count: Fastify then trusts no proxy at all, since a hop count
   * cannot tell the balancer from a client that sends the header itself.
   */
  trustProxy (name: string): boolean | string[] {
    const raw = this.string(name)
    if (raw === null || /^(false|no|off)$/i.test(raw)) return false
    if (/^(true|yes|on)$/i.test(raw)) return true
    const entries = raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
    const bad = entries.filter((entry) => !isProxyAddress(entry))
    if (bad.length > 0) {
      this.problems.push(`${name} must be true, false, or the proxies' addresses and CIDR ranges separated by commas (got "${bad[0] ?? ''}")`)
      return false
    }
    return entries
  }

  postgresUrl (name: string, raw = this.string(name)): string | null {
    if (raw === null) return null
    const problem = postgresUrlProblem(raw)
    if (problem !== null) {
      this.problems.push(`${name} ${problem}`)
      return null
    }
    return raw
  }

  budgets (name: string): ConnectionBudgets {
    const budgets: ConnectionBudgets = { all: null, servers: {} }
    const raw = this.string(name)
    if (raw === null) return budgets
    for (const entry of raw.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
      const match = BUDGET_ENTRY.exec(entry)
      const value = Number(match?.[2])
      if (match === null || value < 1) {
        this.problems.push(`${name} must be a whole number of connections, or server=number entries (for example 150,east=300); "${entry}" is neither`)
      } else if (match[1] === undefined) {
        budgets.all = value
      } else {
        budgets.servers[match[1]] = value
      }
    }
    return budgets
  }

  /**
   * A key set's URL: https only, since whoever can change the keys in transit
   * can sign any token. Plain http is for a server on this machine.
   */
  jwksUrl (name: string): string | null {
    const raw = this.string(name)
    if (raw === null) return null
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      this.problems.push(`${name} must be a URL like https://tenant.auth0.com/.well-known/jwks.json (could not parse it)`)
      return null
    }
    if (url.username !== '' || url.password !== '') {
      this.problems.push(`${name} must not carry a user or password`)
      return null
    }
    if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))) return url.href
    this.problems.push(`${name} must start with https:// (http:// is allowed only for localhost, 127.0.0.1 or [::1]); got "${url.protocol}//${url.host}"`)
    return null
  }

  /** `tenant.eu.auth0.com` or a custom domain; an https:// prefix or a trailing slash is dropped. */
  auth0Domain (name: string): string | null {
    const raw = this.string(name)
    if (raw === null) return null
    const domain = raw.replace(/^https:\/\//i, '').replace(/\/$/, '').toLowerCase()
    if (/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(domain)) return domain
    this.problems.push(`${name} must be a domain name like tenant.eu.auth0.com (got "${raw}")`)
    return null
  }

  /** `name=postgres://…,name2=postgres://…` */
  serverMap (name: string): Record<string, string> | null {
    const raw = this.string(name)
    if (raw === null) return null
    const servers: Record<string, string> = {}
    for (const entry of raw.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
      const eq = entry.indexOf('=')
      const serverName = eq > 0 ? entry.slice(0, eq).trim() : ''
      const url = eq > 0 ? entry.slice(eq + 1).trim() : ''
      if (!SERVER_NAME_PATTERN.test(serverName)) {
        this.problems.push(`${name} entries must look like name=postgres://user:password@host:port; "${serverName || entry.slice(0, 20)}" is not a valid server name (lowercase letters, digits, _ and -, starting with a letter)`)
        continue
      }
      if (serverName in servers) {
        this.problems.push(`${name} names server "${serverName}" twice`)
        continue
      }
      const problem = postgresUrlProblem(url)
      if (problem !== null) {
        this.problems.push(`${name}: server "${serverName}" ${problem}`)
        continue
      }
      servers[serverName] = url
    }
    if (Object.keys(servers).length === 0 && !this.problems.some((p) => p.startsWith(name))) {
      this.problems.push(`${name} is set but names no server`)
    }
    return servers
  }
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])

function isProxyAddress (entry: string): boolean {
  if (PROXY_NAMES.has(entry)) return true
  const [address = '', bits, ...rest] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return false
  if (bits === undefined) return true
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)
}

function postgresUrlProblem (raw: string): string | null {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'must be a URL like postgres://user:password@host:5432/database (could not parse it)'
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return `must start with postgres:// or postgresql:// (got "${url.protocol}//")`
  }
  if (url.hostname === '') return 'must name a host'
  return null
}

function isLoopbackHost (hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}
