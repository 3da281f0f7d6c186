/*
 * npm run token -- --school <slug> | --schools a,b [--sub <subject>] [--expires-in 8h]
 *
 * Prints a development JWT signed with the configured JWT_SECRET (HS256)
 * through @fastify/jwt, carrying the configured claim names, issuer and
 * audience.
 */
import { parseCommandLine, UsageError } from '../src/cli/command-line.js'
import { createDevSigner } from '../src/cli/dev-signer.js'
import { runProgram } from '../src/cli/program.js'
import { loadConfigOrExit } from '../src/config.js'
import { isSafeName, NAME_RULE } from '../src/postgres/names.js'

const USAGE = `Usage: npm run token -- --school <slug> [options]
       npm run token -- --schools <slug>,<slug> [options]

  --school <slug>        the school the token acts for
  --schools <a,b,...>    schools the user may switch between (X-School header)
  --sub <subject>        the user id in "sub" (default: dev-user)
  --expires-in <time>    lifetime such as 15m, 8h, 7d (default: 8h)`

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 }

/** `15m`, `8h`, `7d` in milliseconds. */
function lifetimeMs (raw: string): number {
  const lifetime = /^(\d+)([smhd])$/.exec(raw)
  if (lifetime === null) throw new UsageError(`--expires-in must look like 15m, 8h or 7d (got "${raw}").`, USAGE)
  return Number(lifetime[1]) * UNIT_SECONDS[lifetime[2] as keyof typeof UNIT_SECONDS] * 1000
}

await runProgram(async () => {
  const config = loadConfigOrExit()
  const { values } = parseCommandLine({
    usage: USAGE,
    options: {
      school: { type: 'string' },
      schools: { type: 'string' },
      sub: { type: 'string', default: 'dev-user' },
      'expires-in': { type: 'string', default: '8h' }
    }
  })
  if (values.school === undefined && values.schools === undefined) throw new UsageError('Name a school with --school or --schools.', USAGE)
  const schools = values.schools?.split(',').map((s) => s.trim()).filter((s) => s !== '') ?? []
  for (const slug of [...(values.school === undefined ? [] : [values.school]), ...schools]) {
    if (!isSafeName(slug)) throw new UsageError(`"${slug}" is not a school slug (${NAME_RULE}).`, USAGE)
  }
  const expiresInMs = lifetimeMs(values['expires-in'])

  const { jwt } = config
  if (jwt.secret === null) {
    throw new UsageError('npm run token signs with JWT_SECRET (HS256). With JWT_PUBLIC_KEY (RS256), tokens come from your identity provider.', USAGE)
  }
  if (jwt.usingDevelopmentSecret) process.stderr.write('Note: signed with the development secret (JWT_SECRET is not set).\n')

  const claims: Record<string, unknown> = { sub: values.sub }
  if (values.school !== undefined) claims[jwt.schoolClaim] = values.school
  if (schools.length > 0) claims[jwt.schoolsClaim] = schools
  const sign = await createDevSigner({ secret: jwt.secret, expiresInMs, issuer: jwt.issuer, audience: jwt.audience })
  process.stdout.write(`${sign(claims)}\n`)
  return 0
})
