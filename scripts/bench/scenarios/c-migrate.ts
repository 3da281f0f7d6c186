import { formatTable } from '../../../src/fleet/table.js'
import { databaseUrl } from '../../../src/postgres/connection.js'
import type { Bench } from '../context.js'
import { catalogWithSchools, runMigrate, type MigrateRun } from '../fleet.js'
import { fmt, say } from '../report.js'
import type { Scenario } from './index.js'

/** C: `npm run migrate` end to end over new schools, with and without the template, and a no-op re-run. */
export const migrate: Scenario = {
  name: 'C',
  needsFleet: true,
  heading: () => 'C. Migrate: creating and migrating new schools (npm run migrate, timed end to end)',
  async run (bench) {
    const { fleetSize } = bench
    const small = Math.min(100, fleetSize)
    const rows: string[][] = []
    const record = (what: string, count: number, r: MigrateRun, target = ''): void => {
      rows.push([what, String(count), r.seconds.toFixed(1), fmt((r.seconds * 1000) / count, 1), r.code === 0 ? 'ok' : `exit ${String(r.code)}`, target])
    }
    record(`${fleetSize} new, template, default concurrency`, fleetSize, bench.created, fleetSize >= 1000 ? '< 60 s' : '')
    const smallTemplate = await freshFleet(bench, 'c1', small, [])
    record(`${small} new, template, default concurrency`, small, smallTemplate)
    record(`${small} new, no template`, small, await freshFleet(bench, 'c2', small, ['--no-template']))
    const serial = await freshFleet(bench, 'c3', small, ['--concurrency', '1'])
    record(`${small} new, template, concurrency 1`, small, serial)
    record(`${fleetSize} new, no template`, fleetSize, await freshFleet(bench, 'c4', fleetSize, ['--no-template']))
    const noop = await runMigrate(bench.envFor(bench.mainCatalog))
    record(`no-op re-run over ${fleetSize} current schools`, fleetSize, noop, fleetSize >= 1000 ? '< 10 s' : '')
    say(formatTable(['run', 'schools', 'seconds', 'ms per school', 'result', 'target'], rows))
    say(`Speedup of the default concurrency over concurrency 1 (${small} schools): ${(serial.seconds / smallTemplate.seconds).toFixed(1)}x`)
    return { rows, speedup: serial.seconds / smallTemplate.seconds }
  }
}

/** A catalog of `count` new schools of its own, then one timed migrate run over it. */
async function freshFleet (bench: Bench, name: string, count: number, args: string[]): Promise<MigrateRun> {
  const catalogUrl = databaseUrl(bench.serverUrl, `${bench.options.prefix}_${name}_catalog`)
  await catalogWithSchools(catalogUrl, `${bench.options.prefix}_${name}`, count)
  return await runMigrate(bench.envFor(catalogUrl), args)
}
