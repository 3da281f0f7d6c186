import { moveSchool, type MoveReport } from '../../src/fleet/move.js'
import { formatTable } from '../../src/fleet/table.js'
import { schoolRoleName } from '../../src/postgres/roles.js'
import type { Context } from './commands.js'

export async function move ({ config, topology }: Context, slug: string, to: string, keepSource: boolean): Promise<number> {
  const report = await moveSchool(topology, { slug, to, keepSource, roleSecret: config.tenantRoleSecret })
  process.stdout.write(`${formatMove(report)}\n`)
  return 0
}

/** Sizes a person reads: bytes, kB, MB. */
export function formatBytes (bytes: number): string {
  if (bytes < 1000) return `${bytes} B`
  return bytes < 1_000_000 ? `${(bytes / 1000).toFixed(1)} kB` : `${(bytes / 1_000_000).toFixed(1)} MB`
}

export function formatMove (report: MoveReport): string {
  const rows = report.tables.reduce((sum, table) => sum + table.rows, 0)
  const bytes = report.tables.reduce((sum, table) => sum + table.bytes, 0)
  const role = schoolRoleName(report.databaseName)
  const source = report.source.kept
    ? `kept on server ${report.from}, writes still refused there (drop it with: DROP DATABASE "${report.databaseName}"; DROP ROLE "${role}";)`
    : report.source.error === null
      ? `database ${report.databaseName} and role ${role} dropped on server ${report.from}`
      : `NOT dropped on server ${report.from} (${report.source.error}); the move itself is done: drop them by hand`
  return [
    `Moved school ${report.slug} from ${report.from} to ${report.to} ` +
      `(database ${report.databaseName}, ${report.target === 'cloned' ? `cloned from the template on ${report.to}` : 'created and migrated'}).`,
    '',
    formatTable(['table', 'rows', 'bytes'], report.tables.map((t) => [t.name, String(t.rows), formatBytes(t.bytes)])),
    '',
    `Moved ${rows} row(s), ${formatBytes(bytes)}, in ${report.tables.length} table(s); row counts and checksums match on both servers.`,
    `Write freeze: ${Math.round(report.freezeMs)} ms (copy, verify and switch); whole move ${(report.totalMs / 1000).toFixed(1)} s.`,
    `Source: ${source}.`
  ].join('\n')
}
