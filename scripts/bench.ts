/*
 * npm run bench [-- --scenarios A,B,C,D,E,F,G,H] [--schools 1000] [--servers 1]
 *               [--duration 10] [--connections 10] [--rounds 2] [--prefix bench] [--quick]
 *
 * Measures, side by side in one run, what tenancy costs: A overhead against a
 * single-tenant baseline, B scale to many schools under Zipf traffic, C
 * migrate and onboarding speed, D time from INSERT to first answer, E the
 * growth curve, F an anonymous scan against a working school, G three API
 * processes behind HAProxy, with and without PgBouncer, H the API with
 * thousands of schools known and a thousand active. Prints
 * tables, writes the raw results as JSON and the growth
 * chart as SVG to scripts/bench/results/.
 *
 * Uses its own embedded PostgreSQL (.data/bench-postgres on BENCH_PG_PORT,
 * thrown away at the end; --servers N starts N of them) unless DATABASE_URL
 * is set; then it works on that server in databases named after --prefix
 * and drops them afterwards. Before it starts, it prints the disk and
 * memory the run needs, and refuses when the disk lacks room.
 *
 * Each scenario is a module of scripts/bench/scenarios/.
 */
import path from 'node:path'
import { runProgram } from '../src/cli/program.js'
import { projectRoot } from '../src/config.js'
import { fleetSizeOf, prepareBench } from './bench/context.js'
import { benchDataDir, openDatabaseServers } from './bench/database-server.js'
import { parseBenchOptions, type BenchOptions } from './bench/options.js'
import { elapsed, machine, resultsName, say, writeResult } from './bench/report.js'
import { SCALE_OUT_PROCESSES } from './bench/scenarios/g-scale-out.js'
import { freeDiskMB } from './bench/disk.js'
import { diskRefusal, estimateNeeds, gb } from './bench/resources.js'
import { scenarioNames, scenarios } from './bench/scenarios/index.js'

/** Prints what the run needs; false, with one line saying why, when the disk cannot hold it. */
async function roomFor (options: BenchOptions, fleetSize: number): Promise<boolean> {
  const needs = estimateNeeds(options, fleetSize)
  say(`This run needs about ${gb(needs.diskMB)} of disk and ${gb(needs.memoryMB)} of memory:`)
  for (const part of needs.parts) say(`  ${part}`)
  if (process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== '') return true
  const refusal = diskRefusal(needs, await freeDiskMB(benchDataDir()), path.relative(projectRoot, benchDataDir()))
  if (refusal !== null) process.stderr.write(`${refusal}\n`)
  return refusal === null
}

await runProgram(async () => {
  const options = parseBenchOptions(scenarioNames)
  const chosen = scenarios.filter((s) => options.scenarios.has(s.name))
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: machine(),
    options: { ...options, scenarios: [...options.scenarios] }
  }
  const needsFleet = chosen.some((s) => s.needsFleet)
  if (!await roomFor(options, fleetSizeOf(options, needsFleet))) return 1
  const server = await openDatabaseServers(options.servers, options.schools, {
    processes: options.scenarios.has('G') ? SCALE_OUT_PROCESSES : 1,
    // C's creation time has targets; a smoke run's has none.
    settle: options.scenarios.has('C') && !options.quick
  })
  try {
    const { bench, close } = await prepareBench(options, server, needsFleet)
    try {
      for (const scenario of chosen) {
        say(`\n${elapsed()} ${scenario.heading(bench)}`)
        results[scenario.name] = await scenario.run(bench)
      }
    } finally {
      await close()
    }
  } finally {
    server.release()
  }
  const file = writeResult(resultsName(options), JSON.stringify(results, null, 2))
  say(`\n${elapsed()} Raw results: ${path.relative(projectRoot, file)}`)
  return 0
}, { failure: (error) => `Benchmark failed: ${(error as Error).message}` })
