import { Type, type Static, type TSchema } from 'typebox'
import { httpSchemas, ref, slug } from '../http/schemas.js'

/*
 * Schemas of the lunch API, in TypeBox: they validate requests (no
 * coercion, no unknown properties), shape responses, are the handlers' and
 * the repository's types, and feed the OpenAPI document at /docs/json.
 */

// Ids are bigint in the database: 1 to 19 digits, range checked in parseId.
export const ID_PATTERN = '^[1-9][0-9]{0,18}$'
export const MENU_DETAILS_MAX = 2_000

const date = (description = 'YYYY-MM-DD') => Type.String({ format: 'date', description })

/*
 * An id is a decimal string wherever it appears, in bodies as in paths: a
 * bigint outgrows JavaScript's safe integers, and a JSON number that large
 * would be rounded by the browser without a word. One type also lets a
 * client pass `week.id` to the path as it came.
 */
const id = () => Type.String({ pattern: ID_PATTERN, description: 'A bigint id, as a decimal string' })

export const LunchDaySchema = Type.Object({
  id: id(),
  day: date(),
  menuDetails: Type.String()
}, { $id: 'LunchDay' })

const weekProperties = {
  id: id(),
  weekOf: date(),
  isPublished: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' })
}

export const LunchWeekSchema = Type.Object(weekProperties, { $id: 'LunchWeek' })

export const LunchWeekWithDaysSchema = Type.Object({
  ...weekProperties,
  days: Type.Array(ref(LunchDaySchema))
}, { $id: 'LunchWeekWithDays' })

export type LunchDay = Static<typeof LunchDaySchema>
export type LunchWeek = Static<typeof LunchWeekSchema>
export type LunchWeekWithDays = Static<typeof LunchWeekWithDaysSchema>

/** The lunch app's schemas added by $id; routes refer to them with ref(). */
export const lunchSchemas: TSchema[] = [LunchDaySchema, LunchWeekSchema, LunchWeekWithDaysSchema]

/** For a server of lunch routes alone (the bench's baseline): every schema they refer to. */
export const sharedSchemas: TSchema[] = [...httpSchemas, ...lunchSchemas]

export const weekIdParams = Type.Object({ id: id() }, { additionalProperties: false })

export const dayIdParams = Type.Object({ id: id(), dayId: id() }, { additionalProperties: false })

export const createWeekBody = Type.Object({
  weekOf: date('The Monday the week starts on, YYYY-MM-DD')
}, { additionalProperties: false })

export const publishWeekBody = Type.Object({ isPublished: Type.Boolean() }, { additionalProperties: false })

export const updateDayBody = Type.Object({
  menuDetails: Type.String({ maxLength: MENU_DETAILS_MAX })
}, { additionalProperties: false })

export const publicWeekParams = Type.Object({ slug, weekOf: date() }, { additionalProperties: false })
