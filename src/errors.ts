import createError from '@fastify/error'

/*
 * Every error code the service answers with, in one place. The body is
 * Fastify's { statusCode, code, error, message }; clients branch on `code`,
 * which never changes once published. The README lists them.
 */

// Catalog and readiness
export const CatalogUnavailable = createError('CATALOG_UNAVAILABLE', 'The school catalog is unreachable; try again shortly', 503)
