import type { FastifyPluginAsync } from 'fastify'
import { NotAMonday, WeekOutOfRange } from '../errors.js'
import { PUBLIC_MAX_AGE_SECONDS } from './public-plugin.js'
import { publicWeekParams } from './schemas.js'

/**
 * Refuses a weekOf that no school can have published, before any lookup:
 * an anonymous scan of impossible weeks costs a date check and nothing else.
 */
export function checkPublicWeek (weekOf: string, windowYears: number, now = new Date()): void {
  const day = new Date(`${weekOf}T00:00:00Z`)
  if (day.getUTCDay() !== 1) throw new NotAMonday(weekOf)
  const earliest = Date.UTC(now.getUTCFullYear() - windowYears, now.getUTCMonth(), now.getUTCDate())
  const latest = Date.UTC(now.getUTCFullYear() + windowYears, now.getUTCMonth(), now.getUTCDate())
  if (day.getTime() < earliest || day.getTime() > latest) throw new WeekOutOfRange(windowYears, weekOf)
}

/** What anyone may read: a school's published week, from the catalog's copy, cacheable. */
export const publicLunchRoutes: FastifyPluginAsync = async (app) => {
  app.get<{ Params: { slug: string, weekOf: string } }>('/schools/:slug/lunch-weeks/:weekOf', {
    schema: {
      tags: ['public'],
      summary: 'A school\'s published lunch week, by its Monday',
      params: publicWeekParams,
      response: {
        200: { $ref: 'LunchWeekWithDays#' },
        400: { $ref: 'Error#' },
        404: { $ref: 'Error#' },
        429: { $ref: 'Error#' },
        503: { $ref: 'Error#' }
      }
    }
  }, async (request, reply) => {
    const { slug, weekOf } = request.params
    try {
      checkPublicWeek(weekOf, app.publicMenus.windowYears)
    } catch (error) {
      app.publicMenus.refused('bad_week')
      throw error
    }
    const answer = await app.publicMenus.answer(slug, weekOf)
    // Menus change rarely: a minute in shared caches, then revalidate by ETag.
    // The ETag set here spares @fastify/etag hashing the body again.
    return await reply
      .header('cache-control', `public, max-age=${PUBLIC_MAX_AGE_SECONDS}`)
      .header('etag', answer.etag)
      .type('application/json; charset=utf-8')
      .send(answer.payload)
  })
}
