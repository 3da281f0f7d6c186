import type { Setting } from '../../src/settings/setting.js'

const code = (value: string): string => `\`${value}\``

/** The default as the reference shows it, with the production one beside it where it differs. */
export function describeDefault (setting: Setting): string {
  switch (setting.kind) {
    case 'integer':
    case 'boolean':
      return setting.production === undefined
        ? code(String(setting.default))
        : `${code(String(setting.default))}; ${code(String(setting.production))} in production`
    case 'choice':
      return code(setting.default)
    case 'list':
      return setting.default.length === 0 ? 'empty' : code(setting.default.join(','))
    default:
      return setting.defaultText ?? (setting.default === null ? 'unset' : code(setting.default))
  }
}

/** What values the reader accepts, as the reference shows it; null where any value goes. */
export function describeBounds (setting: Setting): string | null {
  switch (setting.kind) {
    case 'integer':
      return `${setting.min} to ${setting.max}`
    case 'boolean':
      return '`true` or `false`'
    case 'choice':
      return setting.values.map(code).join(', ')
    case 'list':
      return setting.values === undefined ? 'comma-separated' : `${setting.values.map(code).join(', ')}, comma-separated`
    case 'text':
      return setting.minLength === undefined ? setting.format ?? null : `at least ${setting.minLength} characters`
    default:
      return setting.format
  }
}

/** The value a .env copied from .env.example holds: the default as written, or empty. */
export function writtenDefault (setting: Setting): string {
  switch (setting.kind) {
    case 'integer':
    case 'boolean':
      return String(setting.default)
    case 'list':
      return setting.default.join(',')
    default:
      return setting.default ?? ''
  }
}
