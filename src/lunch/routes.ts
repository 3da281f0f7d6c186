import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { InvalidId, LunchDayNotFound, LunchWeekExists, LunchWeekNotFound, NotAMonday } from '../errors.js'
import { bearerAuth, errorResponses, ref, schoolHeader } from '../http/schemas.js'
import { lunchWeeks } from './repository.js'
import {
  createWeekBody, dayIdParams, LunchDaySchema, LunchWeekSchema, LunchWeekWithDaysSchema, publishWeekBody, updateDayBody, weekIdParams
} from './schemas.js'

const BIGINT_MAX = 9_223_372_036_854_775_807n

/** Rejects ids the pattern lets through but bigint cannot hold. */
function parseId (value: string, name: string): string {
  if (BigInt(value) > BIGINT_MAX) throw new InvalidId(name)
  return value
}

/** Refuses a weekOf that is not a Monday: staff and public routes answer the same 400. */
export function assertMonday (weekOf: string): void {
  if (new Date(`${weekOf}T00:00:00Z`).getUTCDay() !== 1) throw new NotAMonday(weekOf)
}

// What every staff route's schema says: its tag, the token and X-School, the errors.
const staff = { tags: ['lunch'], security: bearerAuth, headers: schoolHeader }
const staffErrors = errorResponses(400, 401, 403, 404, 503)
const week = ref(LunchWeekWithDaysSchema)

/**
 * The staff API, under the tenancy hook: every query goes to request.db.
 * Writes that may change what the public page shows also bring the
 * catalog's public copy up to date before they answer.
 */
export const lunchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/lunch-weeks', {
    schema: {
      ...staff,
      summary: 'The school\'s lunch weeks, newest first',
      response: { 200: Type.Array(ref(LunchWeekSchema)), ...staffErrors }
    }
  }, async (request) => await lunchWeeks(request.db).list())

  app.post('/lunch-weeks', {
    schema: {
      ...staff,
      summary: 'Create a week (Monday) with its five weekdays',
      body: createWeekBody,
      response: { 201: week, ...errorResponses(409), ...staffErrors }
    }
  }, async (request, reply) => {
    assertMonday(request.body.weekOf)
    const created = await lunchWeeks(request.db).create(request.body.weekOf)
    if (created === null) throw new LunchWeekExists(request.body.weekOf)
    return await reply.code(201).send(created)
  })

  app.get('/lunch-weeks/:id', {
    schema: { ...staff, summary: 'One week with its days', params: weekIdParams, response: { 200: week, ...staffErrors } }
  }, async (request) => {
    const found = await lunchWeeks(request.db).get(parseId(request.params.id, 'id'))
    if (found === null) throw new LunchWeekNotFound(request.params.id)
    return found
  })

  app.patch('/lunch-weeks/:id', {
    schema: { ...staff, summary: 'Publish or unpublish a week', params: weekIdParams, body: publishWeekBody, response: { 200: week, ...staffErrors } }
  }, async (request) => {
    const copy = app.publicMenus.track(request)
    const updated = await lunchWeeks(request.db).setPublished(parseId(request.params.id, 'id'), request.body.isPublished, copy)
    if (updated === null) throw new LunchWeekNotFound(request.params.id)
    await copy.settle()
    return updated
  })

  app.delete('/lunch-weeks/:id', {
    schema: {
      ...staff,
      summary: 'Delete a week and its days',
      params: weekIdParams,
      response: { 204: Type.Null({ description: 'Deleted' }), ...staffErrors }
    }
  }, async (request, reply) => {
    const copy = app.publicMenus.track(request)
    if (!await lunchWeeks(request.db).remove(parseId(request.params.id, 'id'), copy)) throw new LunchWeekNotFound(request.params.id)
    await copy.settle()
    return await reply.code(204).send(null)
  })

  app.patch('/lunch-weeks/:id/days/:dayId', {
    schema: {
      ...staff,
      summary: 'Set the menu of one day of a week',
      params: dayIdParams,
      body: updateDayBody,
      response: { 200: ref(LunchDaySchema), ...staffErrors }
    }
  }, async (request) => {
    const { id, dayId } = request.params
    const copy = app.publicMenus.track(request)
    const day = await lunchWeeks(request.db).updateDay(parseId(id, 'id'), parseId(dayId, 'dayId'), request.body.menuDetails, copy)
    if (day === null) throw new LunchDayNotFound(id, dayId)
    await copy.settle()
    return day
  })
}
