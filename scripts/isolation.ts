/*
 * npx tsx scripts/isolation.ts [--schools 200] [--requests 50000] [--concurrency 64] [--seed 1]
 *
 * The isolation check (scripts/isolation/) against a real listening server:
 * creates and migrates the iso-NNN schools, serves them over HTTP, drives the
 * interleaved load and exits 1 on any leak or unexpected answer.
 */
import { buildApp } from '../src/app.js'
import { parseCommandLine, UsageError, wholeNumberOption } from '../src/cli/command-line.js'
import { createDevSigner } from '../src/cli/dev-signer.js'
import { runProgram } from '../src/cli/program.js'
import { progressLine } from '../src/cli/progress.js'
import { loadConfigOrExit } from '../src/config.js'
import { runIsolationCheck, type Send } from './isolation/check.js'
import { formatSummary } from './isolation/report.js'
import { isolationSlugs, prepareSchools } from './isolation/schools.js'

const USAGE = `Usage: npx tsx scripts/isolation.ts [options]

  --schools <n>       schools iso-001 … iso-<n> to create, migrate and drive (2 to 999, default 200)
  --requests <n>      interleaved requests of the load phase (default 50000)
  --concurrency <n>   requests in flight at once (1 to 1024, default 64)
  --seed <n>          seed of the request plan (default 1)
  --help              this text

Uses the configured database (DATABASE_URL, or the embedded server of
EMBEDDED_PG_DIR / EMBEDDED_PG_PORT). Exit code 0 when no response leaked and
none was unexpected, 1 otherwise, 2 for a bad command line.`

function parseIsolationCommandLine (): { schools: number, requests: number, concurrency: number, seed: number } {
  const { values } = parseCommandLine({
    usage: USAGE,
    options: { schools: { type: 'string' }, requests: { type: 'string' }, concurrency: { type: 'string' }, seed: { type: 'string' } }
  })
  return {
    schools: wholeNumberOption(values.schools, 'schools', { min: 2, max: 999, fallback: 200 }, USAGE),
    requests: wholeNumberOption(values.requests, 'requests', { min: 1, max: 10_000_000, fallback: 50_000 }, USAGE),
    concurrency: wholeNumberOption(values.concurrency, 'concurrency', { min: 1, max: 1024, fallback: 64 }, USAGE),
    seed: wholeNumberOption(values.seed, 'seed', { min: 0, max: 4_294_967_295, fallback: 1 }, USAGE)
  }
}

/** Requests over HTTP to `origin`, as a browser would send them. */
function fetchSend (origin: string): Send {
  return async (request) => {
    const response = await fetch(`${origin}${request.url}`, {
      method: request.method,
      headers: request.headers,
      ...(request.payload === undefined ? {} : { body: request.payload })
    })
    return { statusCode: response.status, body: await response.text() }
  }
}

await runProgram(async (program) => {
  const args = parseIsolationCommandLine()
  // Each school owns its own run of Mondays, years apart (isolation/calendar.ts),
  // far beyond the public page's usual window of weeks.
  process.env.PUBLIC_WEEK_WINDOW_YEARS ??= '100'
  const config = loadConfigOrExit()
  const { jwt } = config
  if (jwt.secret === null) throw new UsageError('This check signs its tokens with JWT_SECRET (HS256); it cannot run with JWT_PUBLIC_KEY.', USAGE)
  const topology = await program.attach(config)
  const slugs = isolationSlugs(args.schools)
  const started = Date.now()
  const prepared = await prepareSchools(topology, config, slugs)
  if (prepared === null) return 1
  process.stdout.write(`Schools: ${slugs.length} (${prepared.created} database(s) created), ready in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`)

  const app = await buildApp({ config, catalogUrl: topology.catalogUrl, servers: topology.servers, logger: { level: 'warn' } })
  program.onExit(async () => { await app.close() })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('the server has no TCP address')
  const origin = `http://127.0.0.1:${address.port}`

  process.stdout.write(`Load: ${args.requests} requests, ${args.concurrency} in flight, seed ${args.seed}, on ${origin}\n`)
  const progress = progressLine('Requests')
  const result = await runIsolationCheck({
    send: fetchSend(origin),
    schools: slugs,
    requests: args.requests,
    concurrency: args.concurrency,
    seed: args.seed,
    token: await createDevSigner({ secret: jwt.secret, expiresInMs: 600_000, issuer: jwt.issuer, audience: jwt.audience }),
    schoolClaim: jwt.schoolClaim,
    schoolsClaim: jwt.schoolsClaim,
    schoolNames: prepared.names,
    onProgress: progress.update
  })
  progress.end()
  process.stdout.write(formatSummary(result))
  return result.leaks.length > 0 || result.unexpected.length > 0 ? 1 : 0
}, { failure: (error) => `Isolation check stopped: ${(error as Error).stack ?? String(error)}` })
