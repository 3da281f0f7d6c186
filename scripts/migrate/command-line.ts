import { parseCommandLine, UsageError, wholeNumberOption } from '../../src/cli/command-line.js'
import { resolveRollback, RollbackRefused } from '../../src/fleet/migrate-plan.js'
import type { DirectoryMigrationSource } from '../../src/postgres/migrations.js'

export const USAGE = `Usage: npm run migrate -- [options]

  --school <slug>     only this school (repeatable)
  --concurrency <n>   schools migrated at once on each server (default MIGRATE_CONCURRENCY, 8)
  --server-timeout <s>  a server that leaves a liveness probe unanswered this many seconds
                      is lost: its remaining schools fail, naming it (default 10)
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

export interface CommandLine {
  only?: string[]
  concurrency: number
  serverTimeoutMs: number
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

/** The command line; a UsageError when it is off. */
export function parseMigrateCommandLine (config: { migrateConcurrency: number }): CommandLine {
  const { values } = parseCommandLine({
    usage: USAGE,
    options: {
      school: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      'server-timeout': { type: 'string' },
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
    serverTimeoutMs: 1000 * wholeNumberOption(values['server-timeout'], 'server-timeout', { min: 1, max: 3600, fallback: 10 }, USAGE),
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
export async function checkRollback (options: CommandLine, source: DirectoryMigrationSource): Promise<void> {
  if (options.rollback === undefined) return
  try {
    const rollback = resolveRollback(await source.names(), options.rollback.to)
    if (rollback.target === null && !options.dryRun && !options.confirmed) {
      throw new RollbackRefused(`--undo-baseline would undo ${rollback.undo.join(', ')} in every school it names, dropping their tables and all their data. ` +
        'Run it with --dry-run to see each school, then again with --yes to do it.')
    }
  } catch (error) {
    if (!(error instanceof RollbackRefused)) throw error
    throw new UsageError(`Refusing to roll back: ${error.message}.`, USAGE)
  }
}
