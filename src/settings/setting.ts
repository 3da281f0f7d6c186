/*
 * What a setting is: its name, default and bounds, which the reader
 * (src/env-reader.ts) applies, and its meaning and readers, which
 * `npm run docs:config` writes into docs/configuration.md and .env.example.
 * One declaration serves all three, so they cannot disagree.
 */

/**
 * Who uses a setting. API is the server (`npm start`), and the same app
 * that `npm run isolation` and the bench start; the others are npm
 * scripts of those names, and the test suite.
 */
export type Reader = 'API' | 'migrate' | 'schools' | 'token' | 'pooler' | 'isolation' | 'bench' | 'tests'

/** Every command that loads the configuration (src/config.ts) and checks all of it. */
export const EVERY_COMMAND = ['API', 'migrate', 'schools', 'token', 'pooler', 'isolation'] as const

interface About {
  /** The variable. */
  name: string
  /** One line for the reference table. */
  meaning: string
  readBy: readonly Reader[]
  /** The comment above the setting in .env.example, where it says more than `meaning`; `\n` starts a line. */
  note?: string
  /**
   * A value .env.example shows commented out, for a setting it must not
   * set: one without a plain default, or one that needs another to be set.
   */
  example?: string
  /** Read from the environment only, never from .env (so .env.example leaves it out). */
  environmentOnly?: true
}

export interface IntegerSetting extends About {
  kind: 'integer'
  default: number
  /** The default when NODE_ENV=production, where it differs. */
  production?: number
  min: number
  max: number
}

export interface BooleanSetting extends About {
  kind: 'boolean'
  default: boolean
  production?: boolean
}

export interface ChoiceSetting<T extends string = string> extends About {
  kind: 'choice'
  values: readonly T[]
  default: T
}

export interface TextSetting extends About {
  kind: 'text'
  default: string | null
  /** Shorter is refused: secrets. */
  minLength?: number
  /** What a value looks like, for the reference, where the reader does not check it. */
  format?: string
  /** The default in words, where `default` alone would mislead (a secret's development value). */
  defaultText?: string
}

export interface ListSetting extends About {
  kind: 'list'
  /** Comma-separated items; the default when none are given. */
  default: readonly string[]
  /** The only items allowed, where there is such a list. */
  values?: readonly string[]
}

/** Settings with a grammar of their own, each read by the EnvReader method of the same name. */
export type FormatKind = 'postgresUrl' | 'serverMap' | 'budgets' | 'trustProxy' | 'jwksUrl' | 'auth0Domain'

export interface FormatSetting<K extends FormatKind = FormatKind> extends About {
  kind: K
  /** As written in the environment; null: unset. */
  default: string | null
  /** What a value looks like, for the reference. */
  format: string
  defaultText?: string
}

export type Setting = IntegerSetting | BooleanSetting | ChoiceSetting | TextSetting | ListSetting | FormatSetting

/** Settings shown together, in the reference and in .env.example. */
export interface SettingGroup<T extends readonly Setting[] = readonly Setting[]> {
  title: string
  /** A line under the title of its table. */
  about?: string
  /** Gone settings, still read so that a leftover one stops the start: no line in .env.example. */
  retired?: true
  settings: T
}

/** A group whose settings keep their literal types, so that reading NODE_ENV yields its three values. */
export function settingGroup<const T extends readonly Setting[]> (group: SettingGroup<T>): SettingGroup<T> {
  return group
}

type ByName<G extends readonly SettingGroup[]> = { [S in G[number]['settings'][number] as S['name']]: S }

/** The settings of some groups keyed by name; a name declared twice is an error. */
export function byName<const G extends readonly SettingGroup[]> (groups: G): ByName<G> {
  const entries: Record<string, Setting> = {}
  for (const setting of groups.flatMap((group) => group.settings)) {
    if (setting.name in entries) throw new Error(`${setting.name} is declared twice`)
    entries[setting.name] = setting
  }
  return entries as ByName<G>
}
