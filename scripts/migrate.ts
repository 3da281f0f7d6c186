/*
 * npm run migrate [-- --school <slug>]... [--concurrency N] [--dry-run]
 *                 [--failed] [--rollback [--to <name> | --undo-baseline --yes]]
 *                 [--no-template] [--no-seed] [--status]
 *
 * Migrates the catalog, then creates every missing school database (cloned
 * from its server's template) and brings each to the latest app migration;
 * a school provisioned for the first time then gets its seeds.
 * Exit code 0 only when every school succeeded.
 */
import { parseCommandLine, UsageError, wholeNumberOption } from '../src/cli/command-line.js'
import { resolveRollback, RollbackRefused } from '../src/fleet/migrate-plan.js'
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
  --concurrency <n>   schools migrated at once on each server (default MIGRATE_CONCURRENCY, 8)
  --dry-run           show missing databases and pending migrations; change nothing
  --failed            only the schools whose last run failed
  --rollback          undo the newest app migration wherever it is applied (all schools, or --school)
  --to <name>         with --rollback: go back to this migration, undoing those after it
  --undo-baseline     with --rollback: undo every migration, the first included, which
                      drops each school's tables and data; needs --yes
  --yes               confirms --undo-baseline
  --no-template       create new databases the plain way, not cloned from the template;
                      with --rollback, leave the template alone
  --verify            look inside every school database, even those the catalog records as current
  --no-seed           schools provisioned by this run get no seeds (database/seeds/), now or later
  --status            print every school's recorded migration state; migrate nothing
  --help              this text`

interface CommandLine {
  only?: string[]
  concurrency: number
  dryRun: boolean
  failedOnly: boolean
  rollback?: { to?: string | null }
  useTemplate: boolean
  verify: boolean
  status: boolean
  seed: boolean
  /** --yes */
  confirmed: boolean
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
      to: { type: 'string' },
      'undo-baseline': { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
      'no-template': { type: 'boolean', default: false },
      verify: { type: 'boolean', default: false },
      status: { type: 'boolean', default: false },
      'no-seed': { type: 'boolean', default: false }
    }
  })
  if (values.rollback && values.failed) throw new UsageError('--rollback and --failed do not go together', USAGE)
  if (!values.rollback && (values.to !== undefined || values['undo-baseline'])) {
    throw new UsageError('--to and --undo-baseline go with --rollback', USAGE)
  }
  if (values.to !== undefined && values['undo-baseline']) throw new UsageError('--to and --undo-baseline do not go together', USAGE)
  return {
    ...(values.school === undefined ? {} : { only: values.school }),
    concurrency: wholeNumberOption(values.concurrency, 'concurrency', { min: 1, max: 256, fallback: config.migrateConcurrency }, USAGE),
    dryRun: values['dry-run'],
    failedOnly: values.failed,
    ...(values.rollback ? { rollback: values['undo-baseline'] ? { to: null } : values.to === undefined ? {} : { to: values.to } } : {}),
    useTemplate: !values['no-template'],
    verify: values.verify,
    status: values.status,
    seed: !values['no-seed'],
    confirmed: values.yes
  }
}

/**
 * A rollback is checked against the code's migrations before anything is
 * opened: a refusal is a bad command line. Undoing the baseline drops every
 * school's data, so a real run of it needs --yes, as `schools drop` does.
 */
async function checkRollback (options: CommandLine): Promise<void> {
  if (options.rollback === undefined) return
  try {
    const rollback = resolveRollback(await appMigrations.names(), options.rollback.to)
    if (rollback.target === null && !options.dryRun && !options.confirmed) {
      throw new RollbackRefused(`--undo-baseline would undo ${rollback.undo.join(', ')} in every school it names, dropping their tables and all their data. ` +
        'Run it with --dry-run to see each school, then again with --yes to do it.')
    }
  } catch (error) {
    if (!(error instanceof RollbackRefused)) throw error
    throw new UsageError(`Refusing to roll back: ${error.message}.`, USAGE)
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
      s.error !== null ? '-' : migrationsCell(s, report),
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

  const count = (f: (s: Outcome) => boolean): number => report.schools.filter(f).length
  const failed = count((s) => s.error !== null)
  out.push('')
  if (report.rollback !== undefined) {
    out.push(rollbackSummary(report, count))
  } else if (report.dryRun) {
    out.push(`Dry run, nothing changed: ${report.schools.length} school(s), ${count((s) => s.database === 'missing')} database(s) to create, ` +
      `${count((s) => s.error === null && s.migrations.length > 0)} with pending migrations, ${failed} could not be checked.`)
  } else if (isNoop(report)) {
    out.push(`Nothing to do: the catalog and all ${report.schools.length} school database(s) are up to date.`)
  } else {
    out.push(`${report.schools.length} school(s): ${count((s) => s.database === 'created' || s.database === 'cloned')} database(s) created ` +
      `(${count((s) => s.database === 'cloned')} from the template), ` +
      `${count((s) => s.error === null && s.migrations.length > 0)} migrated, ` +
      `${count((s) => s.error === null && s.migrations.length === 0)} already up to date, ${failed} failed.` +
      (failed > 0 ? ' `npm run migrate -- --failed` retries the failed ones.' : ''))
  }
  for (const [server, used] of Object.entries(report.concurrency.used)) {
    if (used < report.concurrency.requested) {
      out.push(`Concurrency on ${server} lowered from ${report.concurrency.requested} to ${used} to stay within its free connections.`)
    }
  }
  process.stdout.write(out.join('\n') + '\n')
}

type Outcome = MigrateReport['schools'][number]

/** A rollback names what each school loses; a run up counts what it gains. */
function migrationsCell (s: Outcome, report: MigrateReport): string {
  if (report.rollback !== undefined) {
    return s.migrations.length === 0 ? 'nothing to undo' : `${report.dryRun ? 'would undo' : 'undone'}: ${s.migrations.join(', ')}`
  }
  return s.migrations.length === 0 ? 'up to date' : `${s.migrations.length} ${report.dryRun ? 'pending' : 'applied'}`
}

function rollbackSummary (report: MigrateReport, count: (f: (s: Outcome) => boolean) => number): string {
  const target = report.rollback?.target ?? null
  const where = target === null ? 'before the first migration' : target
  const undone = count((s) => s.error === null && s.migrations.length > 0)
  const alone = count((s) => s.error === null && s.migrations.length === 0)
  const failed = count((s) => s.error !== null)
  if (report.dryRun) {
    return `Dry run, nothing changed: back to ${where}, ${undone} of ${report.schools.length} school(s) would have migrations undone, ` +
      `${alone} have none to undo and would be left alone, ${failed} could not be checked.`
  }
  return `Rolled back to ${where}: ${report.schools.length} school(s), ${undone} with migrations undone, ${alone} with none to undo (left alone), ${failed} failed.` +
    (failed > 0 ? ' A rollback undoes only what is still applied: run it again to finish.' : '')
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
  await checkRollback(options)
  const topology = await program.attach(config)
  if (options.status) return await printStatus(topology)

  const progress = progressLine('Schools')
  const started = Date.now()
  const report = await migrateSchools(topology, {
    concurrency: options.concurrency,
    ...(options.only === undefined ? {} : { only: options.only }),
    dryRun: options.dryRun,
    failedOnly: options.failedOnly,
    ...(options.rollback === undefined ? {} : { rollback: options.rollback }),
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
