import type { FastifyPluginAsync } from 'fastify'

/** GET /api/me: who the token is and which school this request acts for. */
export const identityRoutes: FastifyPluginAsync = async (app) => {
  app.get('/me', {
    schema: {
      tags: ['identity'],
      summary: 'The token\'s subject, the active school and the schools the token allows',
      security: [{ bearerAuth: [] }],
      response: {
        200: {
          type: 'object',
          properties: {
            subject: { type: ['string', 'null'] },
            school: { type: 'object', properties: { slug: { type: 'string' }, name: { type: 'string' } }, required: ['slug', 'name'] },
            schools: { type: 'array', items: { type: 'string' } }
          },
          required: ['subject', 'school', 'schools']
        },
        401: { $ref: 'Error#' },
        403: { $ref: 'Error#' }
      }
    }
  }, async (request) => ({
    subject: request.identity?.subject ?? null,
    school: { slug: request.school?.slug ?? '', name: request.school?.name ?? '' },
    schools: request.identity?.allowedSchools ?? []
  }))
}
