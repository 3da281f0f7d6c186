// backup → restore --as gives the same rows; every refusal leaves nothing behind.
import t from 'tap'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { Knex } from 'knex'
import { openCatalog } from '../../src/catalog/catalog.js'
import { backupSchool } from '../../src/fleet/backup.js'
import { restoreSchool } from '../../src/fleet/restore.js'
import { appMigrations } from '../../src/postgres/migrations.js'
import { schoolRoleName } from '../../src/postgres/roles.js'
import { testApp, type TestApp } from '../helpers/app.js'
import { withDatabase } from '../helpers/databases.js'
import { runScript } from '../helpers/run.js'
import { waitFor } from '../helpers/timing.js'

const MIGRATIONS = await appMigrations.names()
const LATEST = MIGRATIONS.at(-1) as string

/** Every row of a school database's app tables, as stored. */
async function rowsOf (app: TestApp, database: string): Promise<Record<string, unknown[]>> {
  return await withDatabase(app.dbs.serverUrl, database, async (db) => ({
    lunch_week: await db('lunch_week').orderBy('id'),
    lunch_day: await db('lunch_day').orderBy('id')
  }))
}

async function fill (app: TestApp, slug: string, mondays: string[]): Promise<void> {
  for (const weekOf of mondays) {
    const week = await app.app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: app.auth(slug), payload: { weekOf } })
    const { id, days } = week.json<{ id: string, days: Array<{ id: string }> }>()
    await app.app.inject({ method: 'PATCH', url: `/api/lunch-weeks/${id}/days/${days[1]?.id}`, headers: app.auth(slug), payload: { menuDetails: `Pasta\tand "sauce"\\ of ${weekOf}\nsecond line, ünïcode` } })
  }
}

async function exists (admin: Knex, kind: 'database' | 'role', name: string): Promise<boolean> {
  const sql = kind === 'database' ? 'SELECT 1 FROM pg_database WHERE datname = ?' : 'SELECT 1 FROM pg_roles WHERE rolname = ?'
  return (await admin.raw<{ rows: unknown[] }>(sql, [name])).rows.length > 0
}

async function catalogRow (app: TestApp, slug: string): Promise<Record<string, unknown> | undefined> {
  const catalog = openCatalog(app.dbs.catalogUrl, 1)
  try {
    return await catalog('schools as s').leftJoin('school_migration_status as m', 'm.school_id', 's.id').where('s.slug', slug)
      .first('s.database_name', 's.server', 's.name', 'm.migration', 'm.last_error', 'm.seeding')
  } finally {
    await catalog.destroy()
  }
}

/** Rewrites a backup file's text and, when asked, its closing hash, as someone covering their tracks would. */
function tamper (from: string, to: string, edit: (text: string) => string, { rehash }: { rehash: boolean }): void {
  const edited = edit(fs.readFileSync(from, 'utf8'))
  if (!rehash) {
    fs.writeFileSync(to, edited)
    return
  }
  const body = edited.slice(0, edited.lastIndexOf('END-OF-BACKUP'))
  fs.writeFileSync(to, `${body}END-OF-BACKUP sha256=${createHash('sha256').update(body).digest('hex')}\n`)
}

t.test('backup, then restore --as: the same rows, ids and sequences; a backup taken under writes is one snapshot', async (t) => {
  const app = await testApp(t, 'bk', { schools: ['pine'] })
  await fill(app, 'pine', ['2026-11-23', '2026-11-30', '2026-12-07'])
  await app.app.inject({ method: 'DELETE', url: '/api/lunch-weeks/2', headers: app.auth('pine') })
  t.equal((await app.app.inject({ method: 'PATCH', url: '/api/lunch-weeks/1', headers: app.auth('pine'), payload: { isPublished: true } })).statusCode, 200)
  const dir = t.testdir({})
  const cli = async (...args: string[]): Promise<Awaited<ReturnType<typeof runScript>>> => await runScript('scripts/schools.ts', args, { ...app.dbs.env, INIT_CWD: dir })

  const backedUp = await cli('backup', 'pine', '--out', 'pine.schoolbackup')
  t.equal(backedUp.code, 0, backedUp.stdout + backedUp.stderr)
  t.match(backedUp.stdout, `Backed up school pine at migration ${LATEST} to ${path.join(dir, 'pine.schoolbackup')}:`)
  t.match(backedUp.stdout, /lunch_week: 2 row\(s\)\n {2}lunch_day: 10 row\(s\)\n12 row\(s\) in 2 table\(s\), /)
  const text = fs.readFileSync(path.join(dir, 'pine.schoolbackup'), 'utf8')
  const manifest = JSON.parse(text.split('\n')[1] ?? '') as Record<string, unknown>
  t.match(manifest, {
    format: 1,
    school: { slug: 'pine', name: 'School pine', databaseName: 'bk_pine', server: 'default' },
    migrations: MIGRATIONS,
    takenAt: String,
    tables: [{ name: 'lunch_week', rows: 2, checksum: String }, { name: 'lunch_day', rows: 10, checksum: String }]
  }, 'the manifest describes the school, its migration and each table')
  t.ok(fs.readdirSync(dir).every((f) => !f.endsWith('.partial')), 'no partial file is left')

  const restored = await cli('restore', 'pine.schoolbackup', '--as', 'pine2', '--database', 'bk_pine2')
  t.equal(restored.code, 0, restored.stdout + restored.stderr)
  t.match(restored.stdout, 'Restored school pine2 (School pine) on server default, database bk_pine2, from the backup of pine taken ')
  t.match(restored.stdout, "Every table matches the backup's row count and checksum.")
  t.same(await rowsOf(app, 'bk_pine2'), await rowsOf(app, 'bk_pine'), 'the same rows, ids and timestamps included')
  t.match(await catalogRow(app, 'pine2'), { database_name: 'bk_pine2', server: 'default', name: 'School pine', migration: LATEST, last_error: null, seeding: 'done' })
  t.equal(await exists(app.dbs.admin, 'role', schoolRoleName('bk_pine2')), true, 'with its own role')
  const publicWeek = async (slug: string, weekOf: string): Promise<{ statusCode: number, days: unknown }> => {
    const res = await app.app.inject({ url: `/api/public/schools/${slug}/lunch-weeks/${weekOf}` })
    return { statusCode: res.statusCode, days: res.statusCode === 200 ? res.json<{ days: unknown }>().days : null }
  }
  t.same(await publicWeek('pine2', '2026-11-23'), await publicWeek('pine', '2026-11-23'), 'the restored school\'s published week is on its public page at once')
  t.equal((await publicWeek('pine2', '2026-12-07')).statusCode, 404, 'and its unpublished one is not')

  const next = await Promise.all(['pine', 'pine2'].map(async (slug) => (await app.app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: app.auth(slug), payload: { weekOf: '2027-01-04' } })).json<{ id: string }>().id))
  t.equal(next[1], next[0], 'the API serves the restored school, and its sequences continue where the original\'s did')

  const defaultName = await cli('backup', 'pine')
  t.equal(defaultName.code, 0, defaultName.stderr)
  t.ok(fs.readdirSync(dir).some((f) => /^pine-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.schoolbackup$/.test(f)), 'the default name carries the slug and the time')

  // Weeks come with their five days in one transaction: a backup of one snapshot always holds five days a week.
  const writing = new AbortController()
  const writes = (async () => {
    for (let i = 0; !writing.signal.aborted; i++) {
      const monday = new Date(Date.UTC(2027, 1, 1 + 7 * i)).toISOString().slice(0, 10)
      await app.app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: app.auth('pine'), payload: { weekOf: monday } })
    }
  })()
  const underWrites = await Promise.all([1, 2, 3].map(async (i) => await backupSchool(app.dbs.topology, { slug: 'pine', out: `busy-${i}.schoolbackup`, directory: dir })))
  writing.abort()
  await writes
  for (const report of underWrites) {
    const [weeks, days] = report.manifest.tables.map((table) => table.rows) as [number, number]
    t.equal(days, weeks * 5, `${path.basename(report.file)}: ${weeks} weeks, ${days} days, one consistent state`)
  }
  const busy = await restoreSchool(app.dbs.topology, { file: path.join(dir, 'busy-3.schoolbackup'), as: 'pine3', databaseName: 'bk_pine3', roleSecret: app.dbs.config().tenantRoleSecret })
  t.same(busy.manifest.tables.map((table) => table.rows), underWrites[2]?.manifest.tables.map((table) => table.rows), 'and it restores, checked against its manifest')
})

t.test('restore refuses, in one line and leaving nothing behind: an existing slug, a cut or altered file, a newer migration or format', async (t) => {
  const app = await testApp(t, 'bkref', { schools: ['oak'] })
  await fill(app, 'oak', ['2026-11-23', '2026-11-30'])
  const dir = t.testdir({ 'not-a-backup.txt': 'hello\n' })
  const cli = async (...args: string[]): Promise<Awaited<ReturnType<typeof runScript>>> => await runScript('scripts/schools.ts', args, { ...app.dbs.env, INIT_CWD: dir })
  t.equal((await cli('backup', 'oak', '--out', 'oak.schoolbackup')).code, 0)
  const good = path.join(dir, 'oak.schoolbackup')
  const text = fs.readFileSync(good, 'utf8')
  const variant = (name: string, edit: (text: string) => string, rehash = false): string => {
    tamper(good, path.join(dir, name), edit, { rehash })
    return name
  }
  const dayLine = text.split('\n').find((line) => line.includes('second line')) ?? ''
  const cases: Array<[string, string]> = [
    [variant('row-edited', (s) => s.replace(dayLine, dayLine.replace('Pasta', 'Pizza'))), 'Table lunch_day: its rows do not match their checksum; the file was altered or damaged'],
    [variant('row-added', (s) => s.replace('\\.\nEND lunch_week', `${text.split('\n').find((l) => /^1\t/.test(l)) ?? ''}\n\\.\nEND lunch_week`)), 'Table lunch_week: its rows do not match their checksum'],
    [variant('cut-in-days', (s) => s.slice(0, s.indexOf(dayLine) + 10)), 'The file ends inside table lunch_day: it was cut short'],
    [variant('cut-before-days', (s) => s.slice(0, s.indexOf('TABLE lunch_day'))), 'The file ends before table lunch_day: it was cut short'],
    [variant('no-closing-line', (s) => s.slice(0, s.indexOf('END-OF-BACKUP'))), 'without its closing line (it was cut short)'],
    [variant('manifest-edited', (s) => s.replace('"name":"School oak"', '"name":"School Oak"')), 'The file does not match its closing checksum: it was altered after it was written'],
    [variant('newer-migration', (s) => s.replace(`"${LATEST}"]`, `"${LATEST}","29991231000000_from_the_future"]`), true),
      'The backup is at migration 29991231000000_from_the_future, which this code does not have (made by a newer release?)'],
    [variant('newer-format', (s) => s.replace('SCHOOL-LUNCH-BACKUP 1', 'SCHOOL-LUNCH-BACKUP 2'), true), 'The backup is in format 2; this code reads format 1 (made by a newer release)'],
    ['not-a-backup.txt', 'This is not a school backup file'],
    ['no-such-file', 'Cannot read '],
    ['oak.schoolbackup', 'School "oak" already exists; restore --replace saves its data next to the file, then replaces it']
  ]
  const results = await Promise.all(cases.map(async ([file]) => await cli('restore', file, '--as', file === 'oak.schoolbackup' ? 'oak' : 'oak2', '--database', 'bkref_oak2')))
  for (const [i, [file, message]] of cases.entries()) {
    const result = results[i] as Awaited<ReturnType<typeof runScript>>
    t.equal(result.code, 1, `${file}: exit 1`)
    t.match(result.stderr, message, `${file}: says why`)
    t.equal(result.stderr.trim().split('\n').length, 1, `${file}: in one line`)
  }
  t.equal(await catalogRow(app, 'oak2'), undefined, 'no school was added')
  t.equal(await exists(app.dbs.admin, 'database', 'bkref_oak2'), false, 'no database was left')
  t.equal(await exists(app.dbs.admin, 'role', schoolRoleName('bkref_oak2')), false, 'no role was left')

  // Hashes recomputed, rows changed: only loading the rows and reading them back can tell.
  const forged = variant('forged', (s) => {
    const forgedLine = dayLine.replace('Pasta', 'Pizza')
    const start = s.indexOf('TABLE lunch_day\n') + 'TABLE lunch_day\n'.length
    const rows = s.slice(start, s.indexOf('\\.\nEND lunch_day')).replace(dayLine, forgedLine)
    const hash = createHash('sha256').update(rows).digest('hex')
    return s.slice(0, start) + rows + s.slice(s.indexOf('\\.\nEND lunch_day')).replace(/^(\\\.\nEND lunch_day rows=\d+ sha256=)[0-9a-f]+/, `$1${hash}`)
  }, true)
  const refused = await cli('restore', forged, '--as', 'oak2', '--database', 'bkref_oak2')
  t.equal(refused.code, 1, refused.stdout)
  t.match(refused.stderr, "The restored rows do not match the backup's manifest: table lunch_day: the rows differ", 'the checksums of the manifest catch it')
  t.equal(await catalogRow(app, 'oak2'), undefined, 'no school was added')
  t.equal(await exists(app.dbs.admin, 'database', 'bkref_oak2'), false, 'the database built for it was dropped')
  t.equal(await exists(app.dbs.admin, 'role', schoolRoleName('bkref_oak2')), false, 'and its role')

  const [unknown, noAs, badSlug] = await Promise.all([cli('backup', 'nosuch'), cli('restore', 'oak.schoolbackup'), cli('restore', 'oak.schoolbackup', '--as', 'Bad Slug')])
  t.equal(unknown.code, 1)
  t.equal(unknown.stderr.trim(), 'Unknown school "nosuch": it is not in the catalog')
  t.equal(noAs.code, 2, 'restore without --as is a bad command line')
  t.equal(badSlug.code, 2)
  t.match(badSlug.stderr, 'School slug "Bad Slug" is not allowed')
})

t.test('restore --replace saves the school\'s data next to the file, restores beside it and switches; a failed one changes nothing', async (t) => {
  const app = await testApp(t, 'bkrep', { schools: ['elm'] })
  await app.app.tenancy.listening
  await fill(app, 'elm', ['2026-11-23'])
  await app.app.inject({ method: 'PATCH', url: '/api/lunch-weeks/1', headers: app.auth('elm'), payload: { isPublished: true } })
  const dir = t.testdir({})
  const cli = async (...args: string[]): Promise<Awaited<ReturnType<typeof runScript>>> => await runScript('scripts/schools.ts', args, { ...app.dbs.env, INIT_CWD: dir })
  t.equal((await cli('backup', 'elm', '--out', 'elm.schoolbackup')).code, 0)
  const backedUp = await rowsOf(app, 'bkrep_elm')
  await fill(app, 'elm', ['2026-11-30'])
  await app.app.inject({ method: 'PATCH', url: '/api/lunch-weeks/2', headers: app.auth('elm'), payload: { isPublished: true } })
  const later = await rowsOf(app, 'bkrep_elm')

  tamper(path.join(dir, 'elm.schoolbackup'), path.join(dir, 'elm-forged.schoolbackup'),
    (s) => s.replace(/"checksum":"(-?\d+)"/, '"checksum":"1$1"'), { rehash: true })
  const failed = await cli('restore', 'elm-forged.schoolbackup', '--as', 'elm', '--replace', '--database', 'bkrep_elm_new')
  t.equal(failed.code, 1, failed.stdout)
  t.match(failed.stderr, "The restored rows do not match the backup's manifest: table lunch_week")
  t.match(await catalogRow(app, 'elm'), { database_name: 'bkrep_elm' }, 'a failed replace leaves the catalog as it was')
  t.same(await rowsOf(app, 'bkrep_elm'), later, 'and the school\'s rows')
  t.equal(await exists(app.dbs.admin, 'database', 'bkrep_elm_new'), false, 'the database built for it is gone')
  const stillWritable = await app.app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: app.auth('elm'), payload: { weekOf: '2026-12-07' } })
  t.equal(stillWritable.statusCode, 201, 'and the school takes writes again')
  await app.app.inject({ method: 'DELETE', url: `/api/lunch-weeks/${stillWritable.json<{ id: string }>().id}`, headers: app.auth('elm') })
  fs.rmSync(path.join(dir, fs.readdirSync(dir).find((f) => f.startsWith('elm-2')) ?? 'none'), { force: true })

  const replaced = await cli('restore', 'elm.schoolbackup', '--as', 'elm', '--replace', '--database', 'bkrep_elm_new')
  t.equal(replaced.code, 0, replaced.stdout + replaced.stderr)
  const saved = fs.readdirSync(dir).find((f) => /^elm-.*\.schoolbackup$/.test(f) && f !== 'elm-forged.schoolbackup')
  t.ok(saved !== undefined, `the replaced data is saved next to the file (${saved})`)
  t.match(replaced.stdout, `Its data before the restore is saved in ${path.join(dir, saved ?? '')}.`)
  t.match(replaced.stdout, 'The replaced database bkrep_elm on server default was dropped, with its role.')
  t.match(await catalogRow(app, 'elm'), { database_name: 'bkrep_elm_new', seeding: 'done' }, 'the catalog row now names the restored database')
  t.same(await rowsOf(app, 'bkrep_elm_new'), backedUp, 'which holds the backup\'s rows')
  t.equal(await exists(app.dbs.admin, 'database', 'bkrep_elm'), false, 'the old database is gone')
  const publicStatus = async (weekOf: string): Promise<number> => (await app.app.inject({ url: `/api/public/schools/elm/lunch-weeks/${weekOf}` })).statusCode
  t.equal(await publicStatus('2026-11-23'), 200, 'the public page shows the backup\'s published week')
  t.equal(await publicStatus('2026-11-30'), 404, 'and no longer the week published after the backup')
  await waitFor('elm served from its restored database', 10_000, async () =>
    (await app.app.inject({ url: '/api/lunch-weeks', headers: app.auth('elm') })).json<unknown[]>().length === 1)

  const again = await cli('restore', saved ?? '', '--as', 'elm-before', '--database', 'bkrep_elm_before')
  t.equal(again.code, 0, again.stderr)
  t.same(await rowsOf(app, 'bkrep_elm_before'), later, 'the saved file holds what the school had before the replace')
})
