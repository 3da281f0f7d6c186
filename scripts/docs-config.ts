/*
 * npm run docs:config
 *
 * Writes docs/configuration.md and .env.example from the declarations of
 * the settings (src/settings/), so that neither can drift from what the
 * reader does. test/docs/configuration.test.ts fails while either is stale.
 */
import fs from 'node:fs'
import path from 'node:path'
import { projectRoot } from '../src/config.js'
import { generatedFiles } from './docs-config/files.js'

for (const file of generatedFiles()) {
  const target = path.join(projectRoot, file.path)
  const before = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : null
  if (before === file.content) {
    process.stdout.write(`${file.path}: up to date\n`)
    continue
  }
  fs.mkdirSync(path.dirname(target), { recursive: true })
  fs.writeFileSync(target, file.content)
  process.stdout.write(`${file.path}: written\n`)
}
