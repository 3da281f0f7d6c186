import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { projectRoot } from '../../src/config.js'
import { DirectoryMigrationSource, appMigrations, catalogMigrations } from '../../src/postgres/migrations.js'

t.test('names carry no extension, so .ts and .js builds share one history', async (t) => {
  const source = new DirectoryMigrationSource(path.join(projectRoot, 'test/fixtures/migrations'))
  t.same(await source.names(), ['20260101000000_first', '20260102000000_second'],
    'the .ts/.js pair is one migration; declaration files and other files are ignored')
  const [first] = await source.getMigrations()
  t.ok(first)
  const loaded = await source.getMigration(first!)
  t.type(loaded.up, 'function')
  t.type(loaded.down, 'function')
})

t.test('the project migrations are found under database/', async (t) => {
  t.match(await catalogMigrations.names(), [/_create_schools$/])
  t.match(await appMigrations.names(), [/_create_lunch_menu$/])
  for (const name of [...await catalogMigrations.names(), ...await appMigrations.names()]) {
    t.notMatch(name, /\.(ts|js)$/)
  }
})

t.test('a source listed once keeps the list it first read, for the whole of a run', async (t) => {
  const directory = t.testdir({ '20260101000000_first.ts': 'export async function up () {}\nexport async function down () {}\n' })
  const live = new DirectoryMigrationSource(directory)
  const run = live.listedOnce()
  t.same(await run.names(), ['20260101000000_first'])
  fs.writeFileSync(path.join(directory, '20260102000000_second.ts'), 'export async function up () {}\nexport async function down () {}\n')
  t.same(await run.names(), ['20260101000000_first'], 'a migration added while a run goes on waits for the next run')
  t.same(await live.names(), ['20260101000000_first', '20260102000000_second'], 'the source itself reads the folder each time')
  t.same(await live.listedOnce().names(), ['20260101000000_first', '20260102000000_second'], 'the next run sees it')
})
