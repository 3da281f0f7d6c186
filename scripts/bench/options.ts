import { parseArgs } from 'node:util'
import { scenarioNames } from './scenarios/index.js'

export const USAGE = `Usage: npm run bench -- [options]

  --scenarios A,B,C,D,E   which to run (default all)
  --schools N             schools for B, C and E (default 1000)
  --duration S            seconds per load run (default 8)
  --connections N         concurrent HTTP connections (default 10)
  --rounds N              A: rounds of the three cases, interleaved (default 3)
  --prefix P              name prefix of the bench's databases (default bench)
  --quick                 tiny sizes, for a smoke run: 20 schools, 2 s runs, 1 round

BENCH_PG_PORT sets the port of the bench's own embedded server (default 15439).`

export interface BenchOptions {
  scenarios: Set<string>
  schools: number
  duration: number
  connections: number
  rounds: number
  prefix: string
  quick: boolean
}

export function parseBenchOptions (): BenchOptions {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        scenarios: { type: 'string', default: scenarioNames.join(',') },
        schools: { type: 'string' },
        duration: { type: 'string' },
        connections: { type: 'string', default: '10' },
        rounds: { type: 'string' },
        prefix: { type: 'string', default: 'bench' },
        quick: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false }
      },
      strict: true,
      allowPositionals: false
    }))
  } catch (error) {
    fail((error as Error).message)
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    process.exit(0)
  }
  const { quick } = values
  const number = (name: string, raw: string | undefined, fallback: number, min: number, max: number): number => {
    if (raw === undefined) return fallback
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) fail(`--${name} must be a whole number from ${min} to ${max}`)
    return Number(raw)
  }
  const scenarios = new Set(values.scenarios.toUpperCase().split(',').map((s) => s.trim()).filter((s) => s !== ''))
  for (const s of scenarios) if (!scenarioNames.includes(s)) fail(`unknown scenario "${s}"`)
  if (!/^[a-z][a-z0-9_]{0,20}$/.test(values.prefix)) fail('--prefix must be lowercase letters, digits and _, at most 21 characters')
  return {
    scenarios,
    schools: number('schools', values.schools, quick ? 20 : 1000, 10, 5000),
    duration: number('duration', values.duration, quick ? 2 : 8, 1, 600),
    connections: number('connections', values.connections, 10, 1, 500),
    rounds: number('rounds', values.rounds, quick ? 1 : 3, 1, 10),
    prefix: values.prefix,
    quick
  }
}

function fail (message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`)
  process.exit(2)
}
