import { isNoop, type MigrateReport } from '../../src/fleet/migrate-schools.js'
import { formatTable } from '../../src/fleet/table.js'

/** The run's summary: one line per school, then the counts. */
export function printReport (report: MigrateReport): void {
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
