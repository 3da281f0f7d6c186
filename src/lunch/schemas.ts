/*
 * JSON schemas of the lunch API. They validate requests (no coercion, no
 * unknown properties) and shape responses, and the same objects feed the
 * OpenAPI document at /docs/json.
 */

// Ids are bigint in the database: 1 to 19 digits, range checked in parseId.
export const ID_PATTERN = '^[1-9][0-9]{0,18}$'
export const MENU_DETAILS_MAX = 2_000

const date = { type: 'string', format: 'date', description: 'YYYY-MM-DD' } as const

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' }
  },
  required: ['statusCode', 'code', 'error', 'message']
} as const

export const lunchDaySchema = {
  $id: 'LunchDay',
  type: 'object',
  properties: {
    id: { type: 'integer' },
    day: date,
    menuDetails: { type: 'string' }
  },
  required: ['id', 'day', 'menuDetails']
} as const

const weekProperties = {
  id: { type: 'integer' },
  weekOf: date,
  isPublished: { type: 'boolean' },
  createdAt: { type: 'string', format: 'date-time' },
  updatedAt: { type: 'string', format: 'date-time' }
} as const

export const lunchWeekSchema = {
  $id: 'LunchWeek',
  type: 'object',
  properties: weekProperties,
  required: ['id', 'weekOf', 'isPublished', 'createdAt', 'updatedAt']
} as const

export const lunchWeekWithDaysSchema = {
  $id: 'LunchWeekWithDays',
  type: 'object',
  properties: { ...weekProperties, days: { type: 'array', items: { $ref: 'LunchDay#' } } },
  required: ['id', 'weekOf', 'isPublished', 'createdAt', 'updatedAt', 'days']
} as const

export const sharedSchemas = [errorSchema, lunchDaySchema, lunchWeekSchema, lunchWeekWithDaysSchema]

export const weekIdParams = {
  type: 'object',
  properties: { id: { type: 'string', pattern: ID_PATTERN } },
  required: ['id'],
  additionalProperties: false
} as const

export const dayIdParams = {
  type: 'object',
  properties: { id: { type: 'string', pattern: ID_PATTERN }, dayId: { type: 'string', pattern: ID_PATTERN } },
  required: ['id', 'dayId'],
  additionalProperties: false
} as const

export const createWeekBody = {
  type: 'object',
  properties: { weekOf: { ...date, description: 'The Monday the week starts on, YYYY-MM-DD' } },
  required: ['weekOf'],
  additionalProperties: false
} as const

export const publishWeekBody = {
  type: 'object',
  properties: { isPublished: { type: 'boolean' } },
  required: ['isPublished'],
  additionalProperties: false
} as const

export const updateDayBody = {
  type: 'object',
  properties: { menuDetails: { type: 'string', maxLength: MENU_DETAILS_MAX } },
  required: ['menuDetails'],
  additionalProperties: false
} as const

export const publicWeekParams = {
  type: 'object',
  properties: {
    slug: { type: 'string', pattern: '^[a-z0-9_-]{1,63}$' },
    weekOf: date
  },
  required: ['slug', 'weekOf'],
  additionalProperties: false
} as const

export const errorResponses = {
  400: { $ref: 'Error#' },
  401: { $ref: 'Error#' },
  403: { $ref: 'Error#' },
  404: { $ref: 'Error#' },
  503: { $ref: 'Error#' }
} as const
