import t from 'tap'
import { openCatalog } from '../../src/catalog/catalog.js'
import { createPublicCache } from '../../src/lunch/public-cache.js'
import { publicCopies, type PublicCopies } from '../../src/lunch/public-menus.js'
import { testApp } from '../helpers/app.js'

/*
 * The public cache against the catalog's real copies, with each read of a
 * week held at a gate, so that staff writes can forget the week while a
 * read is in flight, as they do under load.
 */

function thisMonday (): string {
  const now = new Date()
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())
  return new Date(today - ((now.getUTCDay() + 6) % 7) * 86_400_000).toISOString().slice(0, 10)
}

/** The copies, with every week read waiting for release(); `reached(n)` resolves once n reads have started. */
function gatedCopies (copies: PublicCopies): { copies: PublicCopies, reached: (n: number) => Promise<void>, releaseAll: () => void } {
  const gates: Array<() => void> = []
  const waiters: Array<{ n: number, resolve: () => void }> = []
  return {
    // The store's other methods, through its prototype chain.
    copies: Object.assign(Object.create(copies) as PublicCopies, {
      week: async (...args: Parameters<PublicCopies['week']>) => {
        await new Promise<void>((resolve) => {
          gates.push(resolve)
          for (const waiter of waiters.filter((w) => gates.length >= w.n)) waiter.resolve()
        })
        return await copies.week(...args)
      }
    }),
    reached: async (n) => { await new Promise<void>((resolve) => { if (gates.length >= n) resolve(); else waiters.push({ n, resolve }) }) },
    releaseAll: () => { for (const open of gates) open() }
  }
}

t.test('staff writes that forget a week while it is read', async (t) => {
  const ctx = await testApp(t, 'pubforget', { schools: ['alpha'] })
  const catalog = openCatalog(ctx.dbs.catalogUrl, 2)
  t.teardown(async () => { await catalog.destroy() })
  const [school] = await catalog('schools').where({ slug: 'alpha' }).select('id') as Array<{ id: string }>
  const schoolId = Number(school?.id)
  const weekOf = thisMonday()
  const week = { id: '7', weekOf, isPublished: true, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', days: [] }
  await catalog('public_lunch_weeks').insert({ school_id: schoolId, week_of: weekOf, week })

  /** A read of the week, forgotten `times` times while in flight; `reads` reads reach the catalog. */
  async function readForgotten (times: number, reads: number): Promise<{ payload: string }> {
    const gated = gatedCopies(publicCopies(catalog))
    const cache = createPublicCache({ copies: gated.copies, ttlMs: 60_000, windowYears: 2, staleAfterMs: 30_000, catalogTimeoutMs: 2_000 })
    const answer = cache.get(schoolId, weekOf)
    // Awaited below, once the writes are done; a refusal must not count as unhandled before.
    answer.catch(() => {})
    for (let forgotten = 1; forgotten <= times; forgotten++) {
      await gated.reached(forgotten)
      cache.forgetWeek(schoolId, weekOf)
    }
    await gated.reached(reads)
    gated.releaseAll()
    return await answer
  }

  t.test('a few: the read starts again and serves the week', async (t) => {
    const answer = await readForgotten(3, 4)
    t.same(JSON.parse(answer.payload), week, 'the week, read after the last write')
  })

  t.test('one after another, always: a 503 to retry, never a 500', async (t) => {
    await t.rejects(readForgotten(5, 5), { code: 'CATALOG_UNAVAILABLE', statusCode: 503 })
  })
})
