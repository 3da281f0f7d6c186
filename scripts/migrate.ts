/*
 * npm run migrate [-- --school <slug>]... [--concurrency N] [--dry-run]
 *                 [--failed] [--rollback] [--no-template] [--no-seed] [--status]
 *
 * Migrates the catalog, then creates every missing school database (cloned
 * from its server's template) and brings each to the latest app migration;
 * a school provisioned for the first time then gets its seeds.
 * Exit code 0 only when every school succeeded.
 */
import { parseCommandLine, UsageError, wholeNumberOption } from '../src/cli/command-line.js'
import { runProgram } from '../src/cli/program.js'
import { progressLine } from '../src/cli/progress.js'
import { loadConfigOrExit } from '../src/config.js'
import { hasFailures, isNoop, migrateSchools, type MigrateReport } from '../src/fleet/migrate-schools.js'
import { fleetStatus, formatFleetStatus } from '../src/fleet/fleet-status.js'
import { formatTable } from '../src/fleet/table.js'
import { openCatalog } from '../src/catalog/catalog.js'
import { appMigrations } from '../src/postgres/migrations.js'
import type { Topology } from '../src/postgres/topology.js'
import { templateStates } from '../src/fleet/template.js'

const USAGE = `Usage: npm run migrate -- [options]

  --school <slug>     only this school (repeatable)
  --concurrency <n>   schools migrated at once (default MIGRATE_CONCURRENCY, 8)
  --dry-run           show missing databases and pending migrations; change nothing
  --failed            only the schools whose last run failed
  --rollback          undo the last batch of app migrations (all schools, or --school)
  --no-template       create new databases the plain way, not cloned from the template
  --verify            look inside every school database, even those the catalog records as current
  --no-seed           schools provisioned by this run get no seeds (database/seeds/), now or later
  --status            print every school's recorded migration state; migrate nothing
  --help              this text`

interface CommandLine {
  only?: string[]
  concurrency: number
  dryRun: boolean
  failedOnly: boolean
  rollback: boolean
  useTemplate: boolean
  verify: boolean
  status: boolean
  seed: boolean
}

function parseMigrateCommandLine (config: { migrateConcurrency: number }): CommandLine {
  const { values } = parseCommandLine({
    usage: USAGE,
    options: {
      school: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      failed: { type: 'boolean', default: false },
      rollback: { type: 'boolean', default: false },
      'no-template': { type: 'boolean', default: false },
      verify: { type: 'boolean', default: false },
      status: { type: 'boolean', default: false },
      'no-seed': { type: 'boolean', default: false }
    }
  })
  if (values.rollback && values.failed) throw new UsageError('--rollback and --failed do not go together', USAGE)
  return {
    ...(values.school === undefined ? {} : { only: values.school }),
    concurrency: wholeNumberOption(values.concurrency, 'concurrency', { min: 1, max: 256, fallback: config.migrateConcurrency }, USAGE),
    dryRun: values['dry-run'],
    failedOnly: values.failed,
    rollback: values.rollback,
    useTemplate: !values['no-template'],
    verify: values.verify,
    status: values.status,
    seed: !values['no-seed']
  }
}

function printReport (report: MigrateReport): void {
  const out: string[] = []
  const { catalog } = report
  if (catalog.missing) {
    out.push('Catalog: database missing; it would be created with ' + catalog.migrations.length + ' migration(s). No schools to list yet.')
  } else {
    const verb = report.dryRun ? 'pending' : 'applied'
    out.push(`Catalog: ${catalog.created ? 'database created, ' : ''}${catalog.migrations.length === 0 ? 'up to date' : `${catalog.migrations.length} migration(s) ${verb}: ${catalog.migrations.join(', ')}`}`)
  }

  for (const [server, state] of Object.entries(report.templates)) out.push(`Template on ${server}: ${state}`)

  if (report.schools.length > 0) {
    const rows = report.schools.map((s) => [
      s.slug,
      s.server,
      s.databaseName,
      s.action === 'refuse' ? '-' : s.database === 'missing' ? 'would create' : s.database,
      s.action === 'refuse' ? '-' : s.role === 'missing' ? 'would create' : s.role === 'updated' && report.dryRun ? 'new password' : s.role,
      s.error !== null ? '-' : s.migrations.length === 0 ? (report.rollback ? 'none' : 'up to date') : `${s.migrations.length} ${report.dryRun ? 'pending' : report.rollback ? 'rolled back' : 'applied'}`,
      s.error === null ? 'ok' : `FAILED: ${s.error}`,
      // The dry run shows the plan a real run would carry out.
      ...(report.dryRun ? [`${s.action}: ${s.reason}${s.seeds.length === 0 ? '' : `; then seeds ${s.seeds.join(', ')}`}`] : [])
    ])
    const headings = ['school', 'server', 'database', 'database state', 'role', 'migrations', 'result', ...(report.dryRun ? ['plan'] : [])]
    out.push('', formatTable(headings, rows))
  }

  for (const slug of report.unknownSlugs) out.push(`Unknown school: ${slug} (not in the catalog)`)
  const seeded = report.schools.filter((s) => s.seeds.length > 0)
  if (!report.dryRun && seeded.length > 0) {
    out.push('', `Seeds ran for ${seeded.length} new school(s): ${[...new Set(seeded.flatMap((s) => s.seeds))].join(', ')}.`)
  }

  const count = (f: (s: MigrateReport['schools'][number]) => boolean): number => report.schools.filter(f).length
  const failed = count((s) => s.error !== null)
  out.push('')
  if (report.dryRun) {
    out.push(`Dry run, nothing changed: ${report.schools.length} school(s), ${count((s) => s.database === 'missing')} database(s) to create, ` +
      `${count((s) => s.error === null && s.migrations.length > 0)} with pending migrations, ${failed} could not be checked.`)
  } else if (report.rollback) {
    out.push(`Rolled back: ${report.schools.length} school(s), ${count((s) => s.error === null && s.migrations.length > 0)} with a batch undone, ${failed} failed.`)
  } else if (isNoop(report)) {
    out.push(`Nothing to do: the catalog and all ${report.schools.length} school database(s) are up to date.`)
  } else {
    out.push(`${report.schools.length} school(s): ${count((s) => s.database === 'created' || s.database === 'cloned')} database(s) created ` +
      `(${count((s) => s.database === 'cloned')} from the template), ` +
      `${count((s) => s.error === null && s.migrations.length > 0)} migrated, ` +
      `${count((s) => s.error === null && s.migrations.length === 0)} already up to date, ${failed} failed.`)
  }
  if (report.concurrency.used < report.concurrency.requested) {
    out.push(`Concurrency lowered from ${report.concurrency.requested} to ${report.concurrency.used} to stay within the servers' free connections.`)
  }
  process.stdout.write(out.join('\n') + '\n')
}

async function printStatus (topology: Topology): Promise<number> {
  const catalog = openCatalog(topology.catalogUrl, 1)
  const status = await fleetStatus(catalog, {}).then(formatFleetStatus, (error: Error) => error)
  await catalog.destroy()
  if (status instanceof Error) {
    process.stderr.write(`Could not read the catalog: ${status.message}\n`)
    return 1
  }
  const templates = await templateStates(topology.servers, appMigrations)
  process.stdout.write(`${status}\n\n${Object.entries(templates).map(([server, state]) => `Template on ${server}: ${state}`).join('\n')}\n`)
  return 0
}

await runProgram(async (program) => {
  const config = loadConfigOrExit()
  const options = parseMigrateCommandLine(config)
  const topology = await program.attach(config)
  if (options.status) return await printStatus(topology)

  const progress = progressLine('Schools')
  const started = Date.now()
  const report = await migrateSchools(topology, {
    concurrency: options.concurrency,
    ...(options.only === undefined ? {} : { only: options.only }),
    dryRun: options.dryRun,
    failedOnly: options.failedOnly,
    rollback: options.rollback,
    useTemplate: options.useTemplate,
    verify: options.verify,
    seeding: options.seed ? 'run' : 'skip',
    roleSecret: config.tenantRoleSecret,
    createStrategy: config.createDatabaseStrategy,
    onProgress: progress.update
  })
  progress.end()
  printReport(report)
  process.stdout.write(`Took ${((Date.now() - started) / 1000).toFixed(1)} s.\n`)
  return hasFailures(report) ? 1 : 0
}, { failure: (error) => `Migration stopped: ${(error as Error).message}` })
