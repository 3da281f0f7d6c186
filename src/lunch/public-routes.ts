import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { WeekOutOfRange } from '../errors.js'
import { errorResponses, ref } from '../http/schemas.js'
import { PUBLIC_MAX_AGE_SECONDS } from './public-plugin.js'
import { assertMonday } from './routes.js'
import { LunchWeekWithDaysSchema, publicWeekParams } from './schemas.js'

/**
 * Refuses a weekOf that no school can have published, before any lookup:
 * an anonymous scan of impossible weeks costs a date check and nothing else.
 */
function checkPublicWeek (weekOf: string, windowYears: number): void {
  assertMonday(weekOf)
  const day = new Date(`${weekOf}T00:00:00Z`)
  const now = new Date()
  const earliest = Date.UTC(now.getUTCFullYear() - windowYears, now.getUTCMonth(), now.getUTCDate())
  const latest = Date.UTC(now.getUTCFullYear() + windowYears, now.getUTCMonth(), now.getUTCDate())
  if (day.getTime() < earliest || day.getTime() > latest) throw new WeekOutOfRange(windowYears, weekOf)
}

/**
 * Sends a JSON body serialized beforehand (the cache keeps answers so, with
 * their ETag): Fastify passes a string with a content type through as it
 * is, which the route's typed reply, the week itself, does not describe.
 */
async function sendSerialized (reply: FastifyReply, json: string): Promise<FastifyReply> {
  return await reply.type('application/json; charset=utf-8').send(json)
}

/** What anyone may read: a school's published week, from the catalog's copy, cacheable. */
export const publicLunchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/schools/:slug/lunch-weeks/:weekOf', {
    schema: {
      tags: ['public'],
      summary: 'A school\'s published lunch week, by its Monday',
      params: publicWeekParams,
      response: { 200: ref(LunchWeekWithDaysSchema), ...errorResponses(400, 404, 429, 503) }
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
    return await sendSerialized(reply
      .header('cache-control', `public, max-age=${PUBLIC_MAX_AGE_SECONDS}`)
      .header('etag', answer.etag), answer.payload)
  })
}
