import { catalog, embedded, retired, schoolDatabases } from './databases.js'
import { general } from './general.js'
import { browsers, http, limits, operations } from './http.js'
import { byName } from './setting.js'
import { tokens } from './tokens.js'
import { tools } from './tools.js'

/** Every setting any code of the project reads, in the order the reference shows them. */
export const settingGroups = [general, http, catalog, schoolDatabases, embedded, tokens, limits, browsers, operations, retired, tools]

/** The same settings by name: what the readers take, `settings.PORT`. */
export const settings = byName(settingGroups)
