import type { Knex } from 'knex'
import { migrationState, schoolsRepository, type MigrationState, type SchoolStatus, type SchoolWithStatus } from '../catalog/schools.js'
import { appMigrations, type DirectoryMigrationSource } from '../postgres/migrations.js'
import { formatTable } from './table.js'

export interface FleetFilter {
  status?: SchoolStatus
  server?: string
  state?: MigrationState
}

export interface FleetRow extends SchoolWithStatus {
  state: MigrationState
}

export interface FleetStatus {
  latestMigration: string | null
  schools: FleetRow[]
  /** Schools per migration state, over the filtered list. */
  counts: Record<MigrationState, number>
}

/** The fleet as the catalog records it, against `source`'s latest migration; reads only the catalog. */
export async function fleetStatus (catalog: Knex, filter: FleetFilter = {}, source: DirectoryMigrationSource = appMigrations): Promise<FleetStatus> {
  const latest = (await source.names()).at(-1)
  const schools = (await schoolsRepository(catalog).listWithStatus())
    .map((school) => ({ ...school, state: migrationState(school, latest) }))
    .filter((s) => (filter.status === undefined || s.status === filter.status) &&
      (filter.server === undefined || s.server === filter.server) &&
      (filter.state === undefined || s.state === filter.state))
  const counts: Record<MigrationState, number> = { current: 0, behind: 0, failed: 0, never: 0 }
  for (const school of schools) counts[school.state]++
  return { latestMigration: latest ?? null, schools, counts }
}

/** A table a person reads: one school a line, then the counts by state. */
export function formatFleetStatus (fleet: FleetStatus): string {
  const rows = fleet.schools.map((s) => [
    s.slug,
    s.server,
    s.status,
    s.state,
    s.migration ?? '-',
    s.migratedAt === null ? '-' : s.migratedAt.toISOString().replace(/\.\d+Z$/, 'Z'),
    s.seeding ?? '-',
    s.lastError === null ? '' : s.lastError.slice(0, 80)
  ])
  const counts = Object.entries(fleet.counts).map(([state, n]) => `${n} ${state}`).join(', ')
  return [
    formatTable(['school', 'server', 'status', 'state', 'migration', 'migrated at', 'seeds', 'last error'], rows),
    '',
    `${fleet.schools.length} school(s): ${counts}. Latest app migration: ${fleet.latestMigration ?? '(none)'}.`
  ].join('\n')
}
