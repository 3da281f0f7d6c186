import { openCatalog } from '../../src/catalog/catalog.js'
import type { Program } from '../../src/cli/program.js'
import { progressLine } from '../../src/cli/progress.js'
import { loadConfigOrExit } from '../../src/config.js'
import { fleetStatus, formatFleetStatus } from '../../src/fleet/fleet-status.js'
import { configuredProvisioning, hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { templateStates } from '../../src/fleet/template.js'
import { appMigrations, type DirectoryMigrationSource } from '../../src/postgres/migrations.js'
import type { Topology } from '../../src/postgres/topology.js'
import { checkRollback, parseMigrateCommandLine } from './command-line.js'
import { printReport } from './report.js'

/**
 * `npm run migrate` from the command line to the exit code. `source` is the
 * app's migrations; the bench passes a copy with one more, to time a
 * rollout without touching database/app_migrations.
 */
export async function migrateMain (program: Program, source: DirectoryMigrationSource = appMigrations): Promise<number> {
  const config = loadConfigOrExit()
  const options = parseMigrateCommandLine(config)
  await checkRollback(options, source)
  const topology = await program.attach(config)
  if (options.status) return await printStatus(topology, source)

  const progress = progressLine('Schools')
  const started = Date.now()
  const report = await migrateSchools(topology, {
    concurrency: options.concurrency,
    serverTimeoutMs: options.serverTimeoutMs,
    ...(options.only === undefined ? {} : { only: options.only }),
    dryRun: options.dryRun,
    failedOnly: options.failedOnly,
    ...(options.rollback === undefined ? {} : { rollback: options.rollback }),
    useTemplate: options.useTemplate,
    verify: options.verify,
    seeding: options.seed ? 'run' : 'skip',
    ...configuredProvisioning(config),
    migrations: source,
    onProgress: progress.update
  })
  progress.end()
  printReport(report)
  process.stdout.write(`Took ${((Date.now() - started) / 1000).toFixed(1)} s.\n`)
  return hasFailures(report) ? 1 : 0
}

async function printStatus (topology: Topology, source: DirectoryMigrationSource): Promise<number> {
  const catalog = openCatalog(topology.catalogUrl, 1)
  const status = await fleetStatus(catalog, {}, source).then(formatFleetStatus, (error: Error) => error)
  await catalog.destroy()
  if (status instanceof Error) {
    process.stderr.write(`Could not read the catalog: ${status.message}\n`)
    return 1
  }
  const templates = await templateStates(topology.servers, source)
  process.stdout.write(`${status}\n\n${Object.entries(templates).map(([server, state]) => `Template on ${server}: ${state}`).join('\n')}\n`)
  return 0
}
