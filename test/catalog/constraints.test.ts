import t from 'tap'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { testDatabases } from '../helpers/databases.js'

t.test('the catalog refuses rows that would be unsafe to act on', async (t) => {
  const dbs = await testDatabases(t, 'catalogck')
  const prepared = await prepareCatalog(dbs.catalogUrl)
  t.equal(prepared.created, true, 'the catalog database is created when missing')
  const catalog = openCatalog(dbs.catalogUrl, 1)
  t.teardown(async () => { await catalog.destroy() })

  await catalog.raw("INSERT INTO schools (slug, name, database_name) VALUES ('pinewood', 'Pinewood Elementary', 'school_pinewood')")
  const row = await catalog('schools').where({ slug: 'pinewood' }).first()
  t.equal(row.server, 'default', 'server defaults to default')
  t.equal(row.status, 'active', 'status defaults to active')
  t.ok(row.created_at instanceof Date && row.updated_at instanceof Date)

  const rejected: Array<[string, Record<string, string>, RegExp]> = [
    ['SQL in the slug', { slug: 'x"; DROP DATABASE y; --', database_name: 'ok_1' }, /schools_slug_format/],
    ['SQL in the database name', { slug: 'ok-1', database_name: 'x"; DROP DATABASE y; --' }, /schools_database_name_format/],
    ['uppercase slug', { slug: 'Pinewood', database_name: 'ok_2' }, /schools_slug_format/],
    ['space in database name', { slug: 'ok-2', database_name: 'school one' }, /schools_database_name_format/],
    ['unicode slug', { slug: 'écoles', database_name: 'ok_3' }, /schools_slug_format/],
    ['empty slug', { slug: '', database_name: 'ok_4' }, /schools_slug_format/],
    ['64-byte database name', { slug: 'ok-3', database_name: 'a'.repeat(64) }, /schools_database_name_format/],
    ['64-byte slug', { slug: 'a'.repeat(64), database_name: 'ok_5' }, /schools_slug_format/],
    ['duplicate slug', { slug: 'pinewood', database_name: 'ok_6' }, /schools_slug_key/],
    ['duplicate database', { slug: 'ok-4', database_name: 'school_pinewood' }, /schools_database_name_key/],
    ['unknown status', { slug: 'ok-5', database_name: 'ok_7', status: 'deleted' }, /schools_status_known/],
    ['bad server name', { slug: 'ok-6', database_name: 'ok_8', server: 'East Coast' }, /schools_server_format/],
    ['blank name', { slug: 'ok-7', database_name: 'ok_9', name: '  ' }, /schools_name_present/]
  ]
  for (const [what, values, constraint] of rejected) {
    await t.rejects(catalog('schools').insert({ name: 'A School', ...values }), constraint, what)
  }
  await catalog('schools').insert({ slug: 'a'.repeat(63), name: 'Long', database_name: 'b'.repeat(63) })
  t.pass('63 bytes is still allowed')
  t.equal(Number((await catalog('schools').count({ n: '*' }))[0]!.n), 2, 'only the valid rows are stored')

  const before = row.updated_at as Date
  await catalog('schools').where({ slug: 'pinewood' }).update({ status: 'suspended' })
  const after = await catalog('schools').where({ slug: 'pinewood' }).first()
  t.ok(after.updated_at > before, 'updated_at moves on update')
})
