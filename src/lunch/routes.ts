import type { FastifyPluginAsync } from 'fastify'
import { InvalidId, LunchDayNotFound, LunchWeekExists, LunchWeekNotFound, NotAMonday } from '../errors.js'
import { lunchWeeks } from './repository.js'
import {
  createWeekBody, dayIdParams, errorResponses, publishWeekBody, updateDayBody, weekIdParams
} from './schemas.js'

const BIGINT_MAX = 9_223_372_036_854_775_807n

/** Rejects ids the pattern lets through but bigint cannot hold. */
function parseId (value: string, name: string): string {
  if (BigInt(value) > BIGINT_MAX) throw new InvalidId(name)
  return value
}

function assertMonday (weekOf: string): void {
  if (new Date(`${weekOf}T00:00:00Z`).getUTCDay() !== 1) throw new NotAMonday(weekOf)
}

const secured = [{ bearerAuth: [] }]
const schoolHeader = {
  type: 'object',
  properties: { 'x-school': { type: 'string', description: 'Active school slug, for tokens that allow several' } }
} as const

/**
 * The staff API, under the tenancy hook: every query goes to request.db.
 * Writes that may change what the public page shows also bring the
 * catalog's public copy up to date before they answer.
 */
export const lunchRoutes: FastifyPluginAsync = async (app) => {
  app.get('/lunch-weeks', {
    schema: {
      tags: ['lunch'],
      summary: 'The school\'s lunch weeks, newest first',
      security: secured,
      headers: schoolHeader,
      response: { 200: { type: 'array', items: { $ref: 'LunchWeek#' } }, ...errorResponses }
    }
  }, async (request) => await lunchWeeks(request.db).list())

  app.post<{ Body: { weekOf: string } }>('/lunch-weeks', {
    schema: {
      tags: ['lunch'],
      summary: 'Create a week (Monday) with its five weekdays',
      security: secured,
      headers: schoolHeader,
      body: createWeekBody,
      response: { 201: { $ref: 'LunchWeekWithDays#' }, 409: { $ref: 'Error#' }, ...errorResponses }
    }
  }, async (request, reply) => {
    assertMonday(request.body.weekOf)
    const week = await lunchWeeks(request.db).create(request.body.weekOf)
    if (week === null) throw new LunchWeekExists(request.body.weekOf)
    return await reply.code(201).send(week)
  })

  app.get<{ Params: { id: string } }>('/lunch-weeks/:id', {
    schema: {
      tags: ['lunch'],
      summary: 'One week with its days',
      security: secured,
      headers: schoolHeader,
      params: weekIdParams,
      response: { 200: { $ref: 'LunchWeekWithDays#' }, ...errorResponses }
    }
  }, async (request) => {
    const week = await lunchWeeks(request.db).get(parseId(request.params.id, 'id'))
    if (week === null) throw new LunchWeekNotFound(request.params.id)
    return week
  })

  app.patch<{ Params: { id: string }, Body: { isPublished: boolean } }>('/lunch-weeks/:id', {
    schema: {
      tags: ['lunch'],
      summary: 'Publish or unpublish a week',
      security: secured,
      headers: schoolHeader,
      params: weekIdParams,
      body: publishWeekBody,
      response: { 200: { $ref: 'LunchWeekWithDays#' }, ...errorResponses }
    }
  }, async (request) => {
    const copy = app.publicMenus.track(request)
    const week = await lunchWeeks(request.db).setPublished(parseId(request.params.id, 'id'), request.body.isPublished, copy)
    if (week === null) throw new LunchWeekNotFound(request.params.id)
    await copy.settle()
    return week
  })

  app.delete<{ Params: { id: string } }>('/lunch-weeks/:id', {
    schema: {
      tags: ['lunch'],
      summary: 'Delete a week and its days',
      security: secured,
      headers: schoolHeader,
      params: weekIdParams,
      response: { 204: { type: 'null', description: 'Deleted' }, ...errorResponses }
    }
  }, async (request, reply) => {
    const copy = app.publicMenus.track(request)
    if (!await lunchWeeks(request.db).remove(parseId(request.params.id, 'id'), copy)) throw new LunchWeekNotFound(request.params.id)
    await copy.settle()
    return await reply.code(204).send()
  })

  app.patch<{ Params: { id: string, dayId: string }, Body: { menuDetails: string } }>('/lunch-weeks/:id/days/:dayId', {
    schema: {
      tags: ['lunch'],
      summary: 'Set the menu of one day of a week',
      security: secured,
      headers: schoolHeader,
      params: dayIdParams,
      body: updateDayBody,
      response: { 200: { $ref: 'LunchDay#' }, ...errorResponses }
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
