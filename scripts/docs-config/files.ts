import { settingGroups } from '../../src/settings/all.js'
import { envExample } from './env-example.js'
import { configurationReference } from './reference.js'

/** The files `npm run docs:config` writes, relative to the project root, and what they should hold now. */
export function generatedFiles (): Array<{ path: string, content: string }> {
  return [
    { path: 'docs/configuration.md', content: configurationReference(settingGroups) },
    { path: '.env.example', content: envExample(settingGroups) }
  ]
}
