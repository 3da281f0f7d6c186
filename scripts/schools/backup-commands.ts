import path from 'node:path'
import { backupSchool } from '../../src/fleet/backup.js'
import { restoreSchool, type RestoreReport } from '../../src/fleet/restore.js'
import { InvalidSchoolInput } from '../../src/fleet/school-admin.js'
import { UsageError } from '../../src/cli/command-line.js'
import { operatorDirectory, type Context } from './commands.js'
import { formatBytes } from './move-command.js'
import { COMMAND_USAGE } from './usage.js'

export async function backup ({ topology }: Context, slug: string, out: string | undefined): Promise<number> {
  const report = await backupSchool(topology, { slug, out, directory: operatorDirectory() })
  const rows = report.tables.reduce((sum, table) => sum + table.rows, 0)
  process.stdout.write(`Backed up school ${slug} at migration ${report.manifest.migrations.at(-1) ?? '(none)'} to ${report.file}:\n` +
    `${report.tables.map((t) => `  ${t.name}: ${t.rows} row(s)`).join('\n')}\n` +
    `${rows} row(s) in ${report.tables.length} table(s), ${formatBytes(report.bytes)}, read in one snapshot in ${(report.ms / 1000).toFixed(1)} s.\n`)
  return 0
}

export interface RestoreInput {
  file: string
  as: string
  server?: string
  name?: string
  databaseName?: string
  replace: boolean
}

export async function restore ({ config, topology }: Context, input: RestoreInput): Promise<number> {
  let report: RestoreReport
  try {
    report = await restoreSchool(topology, { ...input, file: path.resolve(operatorDirectory(), input.file), roleSecret: config.tenantRoleSecret })
  } catch (error) {
    if (error instanceof InvalidSchoolInput) throw new UsageError(error.message, COMMAND_USAGE.restore)
    throw error
  }
  const { school, manifest, migrated, replaced } = report
  const lines = [
    `Restored school ${school.slug} (${school.name}) on server ${school.server}, database ${school.databaseName}, ` +
      `from the backup of ${manifest.school.slug} taken ${manifest.takenAt}.`,
    ...manifest.tables.map((t) => `  ${t.name}: ${t.rows} row(s)`),
    'Every table matches the backup\'s row count and checksum.',
    migrated.length === 0 ? 'Already at the latest migration.' : `Then migrated to the latest: ${migrated.join(', ')}.`
  ]
  if (replaced !== null) {
    lines.push(`Its data before the restore is saved in ${replaced.file}.`,
      replaced.dropError === null
        ? `The replaced database ${replaced.databaseName} on server ${replaced.server} was dropped, with its role.`
        : `The replaced database ${replaced.databaseName} on server ${replaced.server} could NOT be dropped (${replaced.dropError}); drop it by hand.`)
  }
  process.stdout.write(`${lines.join('\n')}\n`)
  return 0
}
