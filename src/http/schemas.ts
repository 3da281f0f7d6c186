import { Type, type Static, type TSchema, type TUnsafe } from 'typebox'
import { NAME_PATTERN } from '../postgres/names.js'

/*
 * Schemas of the whole HTTP API, whichever app a route belongs to: the
 * error body every route answers with, the token and X-School that staff
 * routes take, and school slugs in paths. Written with TypeBox so that a
 * route's schema is also its handler's type.
 */

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String()
}, { $id: 'Error' })

/** Schemas added to the app by $id, so that routes refer to them and the OpenAPI document lists them once. */
export const httpSchemas: TSchema[] = [ErrorSchema]

/**
 * A `$ref` to a schema added by $id, typed as that schema: the document
 * names it once, and the handler still returns its type.
 */
export function ref<T extends TSchema> (schema: T): TUnsafe<Static<T>> {
  const id = (schema as { $id?: unknown }).$id
  if (typeof id !== 'string') throw new Error('only a schema with an $id can be referred to')
  return Type.Unsafe<Static<T>>(Type.Ref(`${id}#`))
}

const errorBody = ref(ErrorSchema)

/** The Error body under each of the given statuses. */
export function errorResponses<Status extends number> (...statuses: Status[]): Record<Status, typeof errorBody> {
  return Object.fromEntries(statuses.map((status) => [status, errorBody])) as Record<Status, typeof errorBody>
}

/** Routes that need `Authorization: Bearer <JWT>`. */
export const bearerAuth = [{ bearerAuth: [] }]

/** The header that picks one school for a token that allows several. */
export const schoolHeader = Type.Object({
  'x-school': Type.Optional(Type.String({ description: 'Active school slug, for tokens that allow several' }))
})

/** A school slug, by the rule the catalog and every database name follow. */
export const slug = Type.String({ pattern: NAME_PATTERN.source })
