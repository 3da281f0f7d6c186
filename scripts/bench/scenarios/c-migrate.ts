import fs from 'node:fs'
import path from 'node:path'
import { runTsx } from '../../../src/cli/tsx-child.js'
import { projectRoot } from '../../../src/config.js'
import { formatTable } from '../../../src/fleet/table.js'
import { databaseUrl } from '../../../src/postgres/connection.js'
import { appMigrations } from '../../../src/postgres/migrations.js'
import type { Bench } from '../context.js'
import { createFloor, type CreateFloor } from '../create-floor.js'
import { catalogWithSchools, runMigrate, type MigrateRun } from '../fleet.js'
import { migratePhases, sampleMigrateConnections, type Phases } from '../migrate-phases.js'
import { fmt, say } from '../report.js'
import { C_FLOOR, C_SMALL } from '../resources.js'
import type { Scenario } from '../scenario.js'

interface Row {
  run: string
  schools: number
  seconds: number
  code: number | null
  phases: Phases | null
  /** Set where the run has a target at this size. */
  target?: number
}

/**
 * C: `npm run migrate` end to end (Node start-up included): the fleet's
 * creation, a no-op re-run, --status and `schools list`, a one-migration
 * rollout over the whole fleet and its rollback, then new fleets of 100
 * with and without the template and at concurrency 1. Targets depend on
 * the size: the issue-23 ones at 5,000 schools, the first ones at 1,000.
 */
export const migrate: Scenario = {
  name: 'C',
  needsFleet: true,
  heading: (bench) => `C. Migrate: ${fmt(bench.fleetSize)} schools on ${bench.servers.length} server(s) (npm run migrate, timed end to end)`,
  async run (bench) {
    // First, so that it meets the file system as the fleet's creation did.
    const { floor, drop } = await createFloor(bench.servers.map((s) => s.url), bench.options.prefix, Math.ceil(Math.min(C_FLOOR, bench.fleetSize) / bench.servers.length), 4)
    try {
      return await measureRuns(bench, floor)
    } finally {
      await drop()
    }
  }
}

async function measureRuns (bench: Bench, floor: CreateFloor): Promise<Record<string, unknown>> {
  const { fleetSize } = bench
  const targets = targetsFor(fleetSize)
  const rows: Row[] = []
  // The catalog keeps one finishing time per school: read each run's before the next.
  const main = async (run: string, result: MigrateRun, target?: number): Promise<Row> =>
    ({ run, schools: fleetSize, seconds: result.seconds, code: result.code, phases: await migratePhases(bench.mainCatalog, result), ...optional(target) })
  rows.push(await main(`${fleetSize} new, template, default concurrency`, bench.created, targets.created))
  const noop = await runMigrate(bench.envFor(bench.mainCatalog))
  rows.push({ run: `no-op re-run over ${fleetSize} current schools`, schools: fleetSize, seconds: noop.seconds, code: noop.code, phases: null, ...optional(targets.noop) })
  for (const [run, script, args] of [['migrate --status', 'scripts/migrate.ts', ['--status']], ['schools list', 'scripts/schools.ts', ['list']]] as const) {
    const timed = await timedCommand(bench, script, [...args])
    rows.push({ run: `${run} over ${fleetSize} schools`, schools: fleetSize, seconds: timed.seconds, code: timed.code, phases: null, ...optional(targets.listing) })
  }
  const rollout = await rolloutAndBack(bench, async (up) => { rows.push(await main(`one-migration rollout over ${fleetSize} current schools`, up, targets.rollout)) })
  rows.push(await main(`its rollback over ${fleetSize} schools`, rollout.down))
  const speedup = await smallFleets(bench, rows)
  printRows(rows)
  say(`Speedup of the default concurrency over concurrency 1 (${Math.min(C_SMALL, fleetSize)} schools): ${speedup.toFixed(1)}x`)
  printPeaks(bench, bench.createdPeaks, rollout.peaks)
  printFloor(floor, rows[0]?.phases ?? null)
  printTargets(rows)
  return { rows, speedup, createdPeaks: bench.createdPeaks, rolloutPeaks: rollout.peaks, floor }
}

const optional = (target: number | undefined): { target?: number } => target === undefined ? {} : { target }

interface Targets { created?: number, rollout?: number, noop?: number, listing?: number }

/** Seconds, per run; the issue-23 figures at 5,000 schools, the first ones at 1,000. */
function targetsFor (schools: number): Targets {
  if (schools >= 5000) return { created: 150, rollout: 120, noop: 5, listing: 2 }
  if (schools >= 1000) return { created: 60, noop: 10 }
  return {}
}

/** A command of the fleet's tools, timed from spawn to exit. */
async function timedCommand (bench: Bench, script: string, args: string[]): Promise<{ seconds: number, code: number | null }> {
  const started = Date.now()
  const { code } = await runTsx(script, args, { env: bench.envFor(bench.mainCatalog) })
  return { seconds: (Date.now() - started) / 1000, code }
}

const ROLLOUT_MIGRATION = '20991231000000_bench_add_allergens'

/**
 * The app's migrations, copied, plus one more that adds a column: rolled
 * out over the whole fleet, then rolled back, so the fleet (and each
 * server's template) ends where it began. database/app_migrations is never
 * touched; the bench's own entry point runs migrate on the copy. The copy
 * is of the migrations this code runs (TypeScript, or compiled ones when
 * the bench runs compiled), and the added one is plain JavaScript, which
 * both load. `rolledOut` reads what it needs of the rollout before the
 * rollback.
 */
async function rolloutAndBack (bench: Bench, rolledOut: (up: MigrateRun) => Promise<void>): Promise<{ up: MigrateRun, down: MigrateRun, peaks: number[] }> {
  const directory = path.join(projectRoot, '.data/bench-migrations')
  fs.rmSync(directory, { recursive: true, force: true })
  fs.cpSync(appMigrations.directory, directory, { recursive: true })
  fs.writeFileSync(path.join(directory, `${ROLLOUT_MIGRATION}.js`), `export async function up (knex) {
  await knex.schema.alterTable('lunch_day', (table) => { table.text('allergens') })
}
export async function down (knex) {
  await knex.schema.alterTable('lunch_day', (table) => { table.dropColumn('allergens') })
}
`)
  try {
    const env = { ...bench.envFor(bench.mainCatalog), BENCH_MIGRATIONS_DIR: directory }
    const sampler = sampleMigrateConnections(bench.servers.map((s) => s.url))
    const up = await runMigrate(env, [], { script: 'scripts/bench/migrate-with.ts' })
    const peaks = await sampler.stop()
    if (up.code !== 0) throw new Error(`the rollout failed: ${up.summary}`)
    await rolledOut(up)
    const down = await runMigrate(env, ['--rollback'], { script: 'scripts/bench/migrate-with.ts' })
    if (down.code !== 0) throw new Error(`the rollback failed: ${down.summary}`)
    return { up, down, peaks }
  } finally {
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

/** New fleets of 100 on the first server: template, no template, concurrency 1; and, on one server, the whole fleet again without the template. */
async function smallFleets (bench: Bench, rows: Row[]): Promise<number> {
  const { fleetSize } = bench
  const small = Math.min(C_SMALL, fleetSize)
  const add = (run: string, schools: number, result: MigrateRun): void => {
    rows.push({ run, schools, seconds: result.seconds, code: result.code, phases: null })
  }
  const smallTemplate = await freshFleet(bench, 'c1', small, [])
  add(`${small} new, template, default concurrency`, small, smallTemplate)
  add(`${small} new, no template`, small, await freshFleet(bench, 'c2', small, ['--no-template']))
  const serial = await freshFleet(bench, 'c3', small, ['--concurrency', '1'])
  add(`${small} new, template, concurrency 1`, small, serial)
  // Another whole fleet on disk: left out where the fleet is spread for size.
  if (bench.servers.length === 1) add(`${fleetSize} new, no template`, fleetSize, await freshFleet(bench, 'c4', fleetSize, ['--no-template']))
  return serial.seconds / smallTemplate.seconds
}

/** A catalog of `count` new schools of its own, then one timed migrate run over it. */
async function freshFleet (bench: Bench, name: string, count: number, args: string[]): Promise<MigrateRun> {
  const catalogUrl = databaseUrl(bench.serverUrl, `${bench.options.prefix}_${name}_catalog`)
  await catalogWithSchools(catalogUrl, `${bench.options.prefix}_${name}`, count)
  return await runMigrate(bench.envFor(catalogUrl), args)
}

function printRows (rows: Row[]): void {
  say(formatTable(['run', 'schools', 'seconds', 'ms per school', 'start-up s', 'steady schools/s', 'result'], rows.map((row) => [
    row.run,
    fmt(row.schools),
    row.seconds.toFixed(1),
    fmt((row.seconds * 1000) / row.schools, 1),
    row.phases === null ? '' : row.phases.startupSeconds.toFixed(1),
    row.phases === null ? '' : fmt(row.phases.perSecond, 1),
    row.code === 0 ? 'ok' : `exit ${String(row.code)}`
  ])))
  say('start-up: from spawn to the first school finished (Node, catalog, servers, templates); steady: schools a second from the first finished to the last.')
}

function printPeaks (bench: Bench, created: number[], rollout: number[]): void {
  say(`Most connections migrate held on each server (its schools, up to 4 for CREATE DATABASE, 1 probe): ${bench.servers.map((server, i) =>
    `${server.name} ${created[i] ?? 0} creating, ${rollout[i] ?? 0} rolling out`).join('; ')}.`)
}

function printFloor (floor: CreateFloor, created: Phases | null): void {
  say(`CREATE DATABASE … TEMPLATE alone, 4 at a time on each server, nothing of migrate around it, at the start of C: ${floor.databases} databases in ${floor.seconds.toFixed(1)} s, ` +
    `${fmt(floor.perSecond, 1)} a second${created === null ? '' : `; migrate created the fleet at ${fmt(created.perSecond, 1)} schools a second (steady)`}.`)
}

function printTargets (rows: Row[]): void {
  const targeted = rows.filter((row) => row.target !== undefined)
  if (targeted.length === 0) return
  say('\nTargets:')
  say(formatTable(['run', 'seconds', 'target', ''], targeted.map((row) => [
    row.run, row.seconds.toFixed(1), `< ${row.target ?? 0} s`, row.code !== 0 ? 'failed' : row.seconds < (row.target ?? 0) ? 'met' : 'MISSED'
  ])))
}
