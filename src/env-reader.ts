import { isIP } from 'node:net'
import { parseWholeNumber, wholeNumberProblem } from './cli/whole-number.js'
import type { BooleanSetting, ChoiceSetting, FormatSetting, IntegerSetting, ListSetting, Setting, TextSetting } from './settings/setting.js'

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
 * Reads one setting at a time from the environment, in the shape its
 * declaration (src/settings/) gives it, with its default and bounds. A bad
 * value is not thrown: its problem, naming the variable, goes to
 * `problems` and the default is returned, so that every problem of a .env
 * is reported at once. `production` picks the defaults of NODE_ENV=production.
 */
export class EnvReader {
  constructor (private readonly env: Env, private readonly problems: string[], private readonly production = false) {}

  /** Whether the variable holds anything but blanks. */
  isSet (setting: Setting): boolean {
    return this.raw(setting.name) !== null
  }

  text (setting: TextSetting & { default: string }): string
  text (setting: TextSetting): string | null
  text (setting: TextSetting): string | null {
    const value = this.raw(setting.name)
    // Too short is a problem, but the value is still returned: the checks
    // that follow should see the setting as set, not report it missing too.
    if (value !== null && setting.minLength !== undefined && value.length < setting.minLength) {
      this.problems.push(`${setting.name} must be at least ${setting.minLength} characters long (got ${value.length})`)
    }
    return value ?? setting.default
  }

  integer (setting: IntegerSetting): number {
    const fallback = this.production ? setting.production ?? setting.default : setting.default
    const raw = this.raw(setting.name)
    if (raw === null) return fallback
    const value = parseWholeNumber(raw, setting.min, setting.max)
    if (value === null) this.problems.push(wholeNumberProblem(setting.name, raw, setting.min, setting.max))
    return value ?? fallback
  }

  boolean (setting: BooleanSetting): boolean {
    const fallback = this.production ? setting.production ?? setting.default : setting.default
    const raw = this.raw(setting.name)
    if (raw === null) return fallback
    if (/^(true|1|yes|on)$/i.test(raw)) return true
    if (/^(false|0|no|off)$/i.test(raw)) return false
    this.problems.push(`${setting.name} must be true or false (got "${raw}")`)
    return fallback
  }

  choice<T extends string> (setting: ChoiceSetting<T>): T {
    const raw = this.raw(setting.name)
    if (raw === null) return setting.default
    if ((setting.values as readonly string[]).includes(raw)) return raw as T
    this.problems.push(`${setting.name} must be one of ${setting.values.join(', ')} (got "${raw}")`)
    return setting.default
  }

  /** Comma-separated items, or the default when there are none. */
  list (setting: ListSetting): string[] {
    const items = (this.raw(setting.name) ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '')
    for (const item of items) {
      if (setting.values !== undefined && !setting.values.includes(item)) {
        this.problems.push(`${setting.name} may list ${setting.values.join(' and ')} only (got "${item}")`)
      }
    }
    return items.length === 0 ? [...setting.default] : items
  }

  /**
   * `false`, `true`, or addresses, CIDRs and proxy-addr's names (loopback, …).
   * No hop count: Fastify then trusts no proxy at all, since a hop count
   * cannot tell the balancer from a client that sends the header itself.
   */
  trustProxy ({ name, default: fallback }: FormatSetting<'trustProxy'>): boolean | string[] {
    const raw = this.raw(name) ?? fallback
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

  postgresUrl ({ name, default: fallback }: FormatSetting<'postgresUrl'>): string | null {
    const raw = this.raw(name) ?? fallback
    if (raw === null) return null
    const problem = postgresUrlProblem(raw)
    if (problem !== null) {
      this.problems.push(`${name} ${problem}`)
      return null
    }
    return raw
  }

  budgets ({ name, default: fallback }: FormatSetting<'budgets'>): ConnectionBudgets {
    const budgets: ConnectionBudgets = { all: null, servers: {} }
    const raw = this.raw(name) ?? fallback
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
  jwksUrl ({ name, default: fallback }: FormatSetting<'jwksUrl'>): string | null {
    const raw = this.raw(name) ?? fallback
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
  auth0Domain ({ name, default: fallback }: FormatSetting<'auth0Domain'>): string | null {
    const raw = this.raw(name) ?? fallback
    if (raw === null) return null
    const domain = raw.replace(/^https:\/\//i, '').replace(/\/$/, '').toLowerCase()
    if (/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(domain)) return domain
    this.problems.push(`${name} must be a domain name like tenant.eu.auth0.com (got "${raw}")`)
    return null
  }

  /** `name=postgres://…,name2=postgres://…` */
  serverMap ({ name, default: fallback }: FormatSetting<'serverMap'>): Record<string, string> | null {
    const raw = this.raw(name) ?? fallback
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

  private raw (name: string): string | null {
    const value = this.env[name]?.trim()
    return value === undefined || value === '' ? null : value
  }
}

/**
 * Settings read outside the configuration (the bench, the tests): `read`
 * takes what it needs, and a bad value throws, naming the variable.
 */
export function readSettings<T> (env: Env, read: (reader: EnvReader) => T): T {
  const problems: string[] = []
  const value = read(new EnvReader(env, problems))
  if (problems.length > 0) throw new Error(problems.join('; '))
  return value
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
