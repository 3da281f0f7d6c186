/*
 * npm run token -- --school <slug> | --schools a,b [--sub <subject>] [--expires-in 8h]
 *
 * Prints a development JWT signed with the configured JWT_SECRET (HS256),
 * carrying the configured claim names, issuer and audience.
 */
import { parseArgs } from 'node:util'
import { createSigner } from 'fast-jwt'
import { loadConfigOrExit } from '../src/config.js'
import { isSafeName, NAME_RULE } from '../src/postgres/names.js'

const USAGE = `Usage: npm run token -- --school <slug> [options]
       npm run token -- --schools <slug>,<slug> [options]

  --school <slug>        the school the token acts for
  --schools <a,b,...>    schools the user may switch between (X-School header)
  --sub <subject>        the user id in "sub" (default: dev-user)
  --expires-in <time>    lifetime such as 15m, 8h, 7d (default: 8h)`

function fail (message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`)
  process.exit(2)
}

const config = loadConfigOrExit()
let values
try {
  ({ values } = parseArgs({
    options: {
      school: { type: 'string' },
      schools: { type: 'string' },
      sub: { type: 'string', default: 'dev-user' },
      'expires-in': { type: 'string', default: '8h' },
      help: { type: 'boolean', default: false }
    },
    strict: true,
    allowPositionals: false
  }))
} catch (error) {
  fail((error as Error).message)
}
if (values.help === true) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}
if (values.school === undefined && values.schools === undefined) fail('Name a school with --school or --schools.')
const schools = values.schools?.split(',').map((s) => s.trim()).filter((s) => s !== '') ?? []
for (const slug of [...(values.school === undefined ? [] : [values.school]), ...schools]) {
  if (!isSafeName(slug)) fail(`"${slug}" is not a school slug (${NAME_RULE}).`)
}
const lifetime = /^(\d+)([smhd])$/.exec(values['expires-in'] ?? '')
if (lifetime === null) fail(`--expires-in must look like 15m, 8h or 7d (got "${values['expires-in']}").`)
const seconds = Number(lifetime[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[lifetime[2] as 's' | 'm' | 'h' | 'd']

if (config.jwt.secret === null) {
  fail('npm run token signs with JWT_SECRET (HS256). With JWT_PUBLIC_KEY (RS256), tokens come from your identity provider.')
}
if (config.jwt.usingDevelopmentSecret) {
  process.stderr.write('Note: signed with the development secret (JWT_SECRET is not set).\n')
}

const sign = createSigner({
  key: config.jwt.secret,
  algorithm: 'HS256',
  expiresIn: seconds * 1000,
  ...(config.jwt.issuer === null ? {} : { iss: config.jwt.issuer }),
  ...(config.jwt.audience === null ? {} : { aud: config.jwt.audience })
})
const claims: Record<string, unknown> = { sub: values.sub }
if (values.school !== undefined) claims[config.jwt.schoolClaim] = values.school
if (schools.length > 0) claims[config.jwt.schoolsClaim] = schools
process.stdout.write(`${sign(claims)}\n`)
