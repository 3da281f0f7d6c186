import { parseCommandLine, UsageError, wholeNumberOption } from '../../src/cli/command-line.js'
import { BENCH_SERVERS_MAX } from '../../src/settings/tools.js'
import { DEFAULT_PREFIX } from './report.js'

export const USAGE = `Usage: npm run bench -- [options]

  --scenarios A,…,H       which to run (default all; F: anonymous scan; G: scale-out,
                          needs haproxy and pgbouncer; H: the API at scale)
  --schools N             schools for B, C, E, G and H (default 1000; 2000 adds a point to E)
  --servers N             embedded PostgreSQL servers the schools are spread over (default 1;
                          above 1, only C, D and H run)
  --duration S            seconds per load run (default 8)
  --connections N         concurrent HTTP connections (default 10)
  --rounds N              A: rounds of its five cases, interleaved (default 3)
  --prefix P              name prefix of the bench's databases (default bench); another
                          prefix also names the results file: latest-P.json, quick-P.json
  --quick                 tiny sizes, for a smoke run: 20 schools, 2 s runs, 1 round;
                          writes quick.json and growth-quick.svg, leaving latest.json and growth.svg

BENCH_PG_PORT sets the port of the bench's own embedded server (default 15439); with
--servers N, server k listens on BENCH_PG_PORT + k - 1. BENCH_PG_DIR sets where they
keep their data (default .data/bench-postgres; server k adds -k).`

/** Scenarios that spread their schools over every server; the others measure one. */
const SPREAD_SCENARIOS = ['C', 'D', 'H']

export interface BenchOptions {
  scenarios: Set<string>
  schools: number
  /** Embedded servers the fleet is spread over; 1 is the usual layout. */
  servers: number
  duration: number
  connections: number
  rounds: number
  prefix: string
  quick: boolean
}

/**
 * The command line; a UsageError when it is off. The scenario letters come
 * from the caller, since the scenarios themselves depend on BenchOptions.
 */
export function parseBenchOptions (scenarioNames: readonly string[]): BenchOptions {
  const { values } = parseCommandLine({
    usage: USAGE,
    options: {
      scenarios: { type: 'string', default: scenarioNames.join(',') },
      schools: { type: 'string' },
      servers: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string', default: '10' },
      rounds: { type: 'string' },
      prefix: { type: 'string', default: DEFAULT_PREFIX },
      quick: { type: 'boolean', default: false }
    }
  })
  const { quick } = values
  const number = (raw: string | undefined, name: string, min: number, max: number, fallback: number): number =>
    wholeNumberOption(raw, name, { min, max, fallback }, USAGE)
  const scenarios = new Set(values.scenarios.toUpperCase().split(',').map((s) => s.trim()).filter((s) => s !== ''))
  for (const s of scenarios) if (!scenarioNames.includes(s)) throw new UsageError(`unknown scenario "${s}"`, USAGE)
  const servers = number(values.servers, 'servers', 1, BENCH_SERVERS_MAX, 1)
  const unspread = [...scenarios].filter((s) => !SPREAD_SCENARIOS.includes(s))
  if (servers > 1 && unspread.length > 0) {
    throw new UsageError(`--servers above 1 runs only scenarios ${SPREAD_SCENARIOS.join(', ')} (not ${unspread.join(', ')}): the others measure one server`, USAGE)
  }
  if (servers > 1 && process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== '') {
    throw new UsageError('--servers above 1 needs the bench\'s own embedded servers: unset DATABASE_URL', USAGE)
  }
  if (!/^[a-z][a-z0-9_]{0,20}$/.test(values.prefix)) throw new UsageError('--prefix must be lowercase letters, digits and _, at most 21 characters', USAGE)
  return {
    scenarios,
    schools: number(values.schools, 'schools', 10, 5000, quick ? 20 : 1000),
    servers,
    duration: number(values.duration, 'duration', 1, 600, quick ? 2 : 8),
    connections: number(values.connections, 'connections', 1, 500, 10),
    rounds: number(values.rounds, 'rounds', 1, 10, quick ? 1 : 3),
    prefix: values.prefix,
    quick
  }
}
