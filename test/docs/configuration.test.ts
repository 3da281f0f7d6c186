import fs from 'node:fs'
import path from 'node:path'
import dotenv from 'dotenv'
import t from 'tap'
import { generatedFiles } from '../../scripts/docs-config/files.js'
import { loadConfig, projectRoot } from '../../src/config.js'
import { settings } from '../../src/settings/all.js'
import { environmentReads, typeScriptFiles } from '../helpers/sources.js'

const FIX = 'run `npm run docs:config` and commit what it writes'

// Set by the system or by npm, passed on or looked at, never configured.
const NOT_SETTINGS = new Set(['PATH', 'HOME', 'INIT_CWD'])

const declared = new Set(Object.keys(settings))
const codeFiles = ['src', 'scripts', 'test'].flatMap((dir) => typeScriptFiles(path.join(projectRoot, dir)))

t.test('docs/configuration.md and .env.example are what npm run docs:config writes now', async (t) => {
  for (const file of generatedFiles()) {
    const target = path.join(projectRoot, file.path)
    const written = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : null
    if (written === file.content) t.pass(`${file.path} is current`)
    else t.fail(`${file.path} ${written === null ? 'is missing' : 'differs from what src/settings/ declares'}: ${FIX}`)
  }
})

t.test('every variable the code reads from process.env is a declared setting', async (t) => {
  t.same(environmentReads("process.env.BENCH_PG_DIR ?? process.env['TEST_PG_DIR']"), ['BENCH_PG_DIR', 'TEST_PG_DIR'], 'the scan sees both spellings')
  const undeclared = codeFiles.flatMap((file) => environmentReads(fs.readFileSync(file, 'utf8'))
    .filter((name) => !declared.has(name) && !NOT_SETTINGS.has(name))
    .map((name) => `${name} (${path.relative(projectRoot, file)})`))
  t.same(undeclared, [], undeclared.length === 0 ? 'all declared' : `read but not declared: ${undeclared.join(', ')}. Declare each in src/settings/, then ${FIX}`)
})

t.test('every declared setting is read somewhere', async (t) => {
  const code = codeFiles
    .filter((file) => !file.startsWith(path.join(projectRoot, 'src/settings')))
    .map((file) => fs.readFileSync(file, 'utf8'))
    .join('\n')
  const unread = [...declared].filter((name) => !new RegExp(`(settings|process\\.env)\\.${name}\\b`).test(code))
  t.same(unread, [], unread.length === 0 ? 'all read' : `declared but never read: ${unread.join(', ')}; a declaration nobody reads is a stale line in the docs`)
})

t.test('a .env copied from .env.example holds exactly the defaults', async (t) => {
  const example = generatedFiles().find((file) => file.path === '.env.example')?.content ?? ''
  const values = dotenv.parse(example)
  t.ok(Object.keys(values).length > 25, `the example sets the settings with a plain default (${Object.keys(values).length})`)
  t.same(loadConfig(values), loadConfig({}), 'the same configuration as no settings at all')
})
