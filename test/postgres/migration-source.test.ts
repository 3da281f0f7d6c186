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
