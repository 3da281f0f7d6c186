// Every write to a week locks the week's row before any of its days. A
// DELETE locks the week and then, through its cascade, the days; a day edit
// that locked its day first and its week second could deadlock with it, and
// PostgreSQL would cancel one of the two: a 500 for a plain edit. Here a
// third transaction holds the day so that the edit and the delete meet in
// exactly the order that deadlocked.
import t from 'tap'
import { lunchWeeks } from '../../src/lunch/repository.js'
import { createKnex, databaseUrl } from '../../src/postgres/connection.js'
import { testApp } from '../helpers/app.js'
import { waitFor } from '../helpers/timing.js'

t.test('a day edit and a delete of its week, both waiting on the day: both finish, edit first', async (t) => {
  const { app, auth, dbs } = await testApp(t, 'wlock', { schools: ['alpha'] })
  const created = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: auth('alpha'), payload: { weekOf: '2027-01-04' } })
  t.equal(created.statusCode, 201, created.body)
  const week = created.json<{ id: string, days: Array<{ id: string }> }>()
  const dayId = week.days[0]?.id ?? ''

  const database = dbs.databaseName('alpha')
  const db = createKnex(databaseUrl(dbs.serverUrl, database), { max: 4 })
  t.teardown(async () => { await db.destroy() })
  const waiting = async (): Promise<number> => {
    const { rows } = await dbs.admin.raw<{ rows: Array<{ n: number }> }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ? AND wait_event_type = 'Lock'", [database])
    return rows[0]?.n ?? 0
  }

  const holder = await db.transaction()
  await holder('lunch_day').where({ id: dayId }).forUpdate().select('id')
  const weeks = lunchWeeks(db)
  const edit = weeks.updateDay(week.id, dayId, 'soup')
  await waitFor('the edit to wait on the held day', 10_000, async () => await waiting() === 1)
  const removal = weeks.remove(week.id)
  await waitFor('the delete to wait as well', 10_000, async () => await waiting() === 2)
  await holder.commit()

  const [edited, removed] = await Promise.allSettled([edit, removal])
  t.same(edited, { status: 'fulfilled', value: { id: dayId, day: '2027-01-04', menuDetails: 'soup' } }, 'the edit, which locked the week first, is done')
  t.same(removed, { status: 'fulfilled', value: true }, 'then the delete, which waited for the week')
  t.same(await db('lunch_week').where({ id: week.id }), [], 'and the week is gone')
})
