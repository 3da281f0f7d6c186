import createError from '@fastify/error'

/*
 * Every error code the service answers with, in one place. The body is
 * Fastify's { statusCode, code, error, message }; clients branch on `code`,
 * which never changes once published. docs/spa.md, "Errors", lists them.
 */

// Token (401)
export const TokenMissing = createError('TOKEN_MISSING', 'An Authorization: Bearer <token> header is required', 401)
export const TokenMalformed = createError('TOKEN_MALFORMED', 'The token is not a well-formed JWT: %s', 401)
export const TokenExpired = createError('TOKEN_EXPIRED', 'The token has expired', 401)
export const TokenNotYetValid = createError('TOKEN_NOT_YET_VALID', 'The token is not valid yet (nbf)', 401)
export const TokenInvalid = createError('TOKEN_INVALID', 'The token was rejected: %s', 401)
export const SchoolClaimMissing = createError('SCHOOL_CLAIM_MISSING', 'The token names no school (claim "%s")', 401)
export const SchoolClaimInvalid = createError('SCHOOL_CLAIM_INVALID', 'The token\'s school claim "%s" is not a school slug', 401)

// Token keys (503, with Retry-After): the key set could not be fetched, so a
// token whose key is not cached can be neither accepted nor refused.
export const AuthKeysUnavailable = createError('AUTH_KEYS_UNAVAILABLE', 'The keys that sign tokens cannot be fetched right now; try again shortly', 503)

// Choosing the school (400/403)
export const SchoolHeaderInvalid = createError('SCHOOL_HEADER_INVALID', 'X-School must be one school slug: %s', 400)
export const SchoolNotSelected = createError('SCHOOL_NOT_SELECTED', 'The token allows several schools; choose one with the X-School header', 400)
export const SchoolNotAllowed = createError('SCHOOL_NOT_ALLOWED', 'The token does not allow school "%s"', 403)
export const SchoolUnknown = createError('SCHOOL_UNKNOWN', 'School "%s" is not in the catalog', 403)
export const SchoolSuspended = createError('SCHOOL_SUSPENDED', 'School "%s" is suspended', 403)

// The school's database (503, with Retry-After)
export const SchoolDatabaseMissing = createError('SCHOOL_DATABASE_MISSING', 'The database of school "%s" does not exist yet; run npm run migrate', 503)
export const SchoolNotMigrated = createError('SCHOOL_NOT_MIGRATED', 'The database of school "%s" is not migrated yet; run npm run migrate', 503)
export const SchoolDatabaseUnavailable = createError('SCHOOL_DATABASE_UNAVAILABLE', 'The database of school "%s" cannot be reached right now', 503)
export const SchoolDatabaseBusy = createError('SCHOOL_DATABASE_BUSY', 'The database of school "%s" is too busy right now', 503)
export const SchoolMoving = createError('SCHOOL_MOVING', 'School "%s" is moving to another server; reads work, writes are refused until it is done', 503)

// Catalog and readiness (503)
export const CatalogUnavailable = createError('CATALOG_UNAVAILABLE', 'The school catalog is unreachable; try again shortly', 503)
export const ShuttingDown = createError('SHUTTING_DOWN', 'This process is shutting down; requests go to the others', 503)

// Request validation (400/404/409/413/415)
export const InvalidRequest = createError('INVALID_REQUEST', '%s', 400)
export const InvalidId = createError('INVALID_ID', '%s must be a positive whole number below 2^63', 400)
export const NotAMonday = createError('WEEK_NOT_MONDAY', 'weekOf must be a Monday (got %s)', 400)
export const WeekOutOfRange = createError('WEEK_OUT_OF_RANGE', 'weekOf must lie within %s years of today (got %s)', 400)
export const InvalidJson = createError('INVALID_JSON', 'The request body is not valid JSON', 400)
export const BodyTooLarge = createError('BODY_TOO_LARGE', 'The request body is larger than the limit', 413)
export const UnsupportedMediaType = createError('UNSUPPORTED_MEDIA_TYPE', 'Send the request body as application/json', 415)
export const RouteNotFound = createError('ROUTE_NOT_FOUND', 'No route %s %s', 404)

// Lunch menus (404/409)
export const LunchWeekNotFound = createError('LUNCH_WEEK_NOT_FOUND', 'No lunch week %s', 404)
export const LunchDayNotFound = createError('LUNCH_DAY_NOT_FOUND', 'Lunch week %s has no day %s', 404)
export const LunchWeekExists = createError('LUNCH_WEEK_EXISTS', 'A lunch week for %s already exists', 409)
export const PublishedWeekNotFound = createError('PUBLISHED_WEEK_NOT_FOUND', 'No published lunch week for that school and date', 404)

// Limits (429)
export const RateLimited = createError('RATE_LIMITED', 'Too many requests for this school; retry in %s', 429)
export const AddressRateLimited = createError('RATE_LIMITED', 'Too many requests from this address; retry in %s', 429)

/** Seconds a client should wait before retrying a 503. */
export const RETRY_AFTER_SECONDS = 5

// Public pages (404/503)
export const SchoolNotFound = createError('SCHOOL_NOT_FOUND', 'No school "%s"', 404)
export const PublicMenuStale = createError('PUBLIC_MENU_STALE', 'The public menus of school "%s" are being brought up to date; try again shortly', 503)

// Tenant pools (503)
export const TenantPoolsExhausted = createError('TENANT_POOLS_EXHAUSTED', 'Every school connection pool is busy; try again shortly', 503)
