import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { bearerAuth, errorResponses } from '../http/schemas.js'

const Identity = Type.Object({
  subject: Type.Unsafe<string | null>({ type: ['string', 'null'] }),
  school: Type.Object({ slug: Type.String(), name: Type.String() }),
  schools: Type.Array(Type.String())
})

/** GET /api/me: who the token is and which school this request acts for. */
export const identityRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/me', {
    schema: {
      tags: ['identity'],
      summary: 'The token\'s subject, the active school and the schools the token allows',
      security: bearerAuth,
      response: { 200: Identity, ...errorResponses(401, 403) }
    }
  }, async (request) => ({
    subject: request.identity?.subject ?? null,
    school: { slug: request.school?.slug ?? '', name: request.school?.name ?? '' },
    schools: request.identity?.allowedSchools ?? []
  }))
}
