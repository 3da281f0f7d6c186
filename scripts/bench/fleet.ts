import type { Knex } from 'knex'
import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import { runTsx } from '../../src/cli/tsx-child.js'
import { runConcurrently } from '../../src/fleet/concurrency.js'
import { createKnex, databaseUrl } from '../../src/postgres/connection.js'

export const WEEK_OF = '2026-11-23'

export const slugOf = (prefix: string, n: number): string => `${prefix}-${String(n).padStart(4, '0')}`
export const databaseOf = (prefix: string, n: number): string => `${prefix}_${String(n).padStart(4, '0')}`

/** The server of school number n (from 1) when schools are dealt to `servers` in turn. */
export const serverIndexOf = (n: number, servers: number): number => (n - 1) % servers

/**
 * A catalog holding `count` schools named <prefix>-0001…, not yet migrated,
 * dealt to the named servers in turn (school 1 to the first).
 */
export async function catalogWithSchools (catalogUrl: string, prefix: string, count: number, servers: readonly string[] = ['default']): Promise<string[]> {
  await prepareCatalog(catalogUrl)
  const catalog = openCatalog(catalogUrl, 1)
  try {
    const rows = Array.from({ length: count }, (_, i) => ({
      slug: slugOf(prefix, i + 1),
      name: `Bench school ${i + 1}`,
      database_name: databaseOf(prefix, i + 1),
      server: servers[serverIndexOf(i + 1, servers.length)]
    }))
    for (let i = 0; i < rows.length; i += 500) {
      await catalog('schools').insert(rows.slice(i, i + 500)).onConflict('slug').ignore()
    }
  } finally {
    await catalog.destroy()
  }
  return Array.from({ length: count }, (_, i) => slugOf(prefix, i + 1))
}

export interface MigrateRun {
  seconds: number
  code: number | null
  summary: string
  startedAt: Date
  endedAt: Date
}

export interface MigrateRunOptions {
  /** The entry point: `npm run migrate`'s own, or the bench's with another migrations folder. */
  script?: string
}

/**
 * `npm run migrate` as an operator runs it, timed from spawn to exit; without
 * the seeds, so every school holds exactly the week the bench puts in it
 * (id 1), and C times databases, roles and migrations.
 */
export async function runMigrate (env: Record<string, string>, args: string[] = [], { script = 'scripts/migrate.ts' }: MigrateRunOptions = {}): Promise<MigrateRun> {
  const startedAt = new Date()
  const { code, stdout, stderr } = await runTsx(script, ['--no-seed', ...args], { env })
  const endedAt = new Date()
  const lines = `${stdout}${stderr}`.trim().split('\n')
  return {
    seconds: (endedAt.getTime() - startedAt.getTime()) / 1000,
    code,
    summary: lines.filter((l) => /school\(s\)|Nothing to do|FAILED|Rolled back/.test(l)).slice(-3).join(' | ') || (lines.at(-1) ?? ''),
    startedAt,
    endedAt
  }
}

/** A school database: the server it is on and its name. */
export interface SchoolDatabase { serverUrl: string, database: string }

/** One published week with five filled days in each school database (id 1 in a fresh database). */
export async function seedWeeks (databases: SchoolDatabase[], concurrency: number): Promise<void> {
  await runConcurrently(databases, concurrency, async ({ serverUrl, database }) => {
    const db: Knex = createKnex(databaseUrl(serverUrl, database), { max: 1, applicationName: 'school-lunch:bench' })
    try {
      if ((await db('lunch_week').where({ week_of: WEEK_OF }).first()) !== undefined) return
      await db.transaction(async (trx) => {
        const [week] = await trx('lunch_week').insert({ week_of: WEEK_OF, is_published: true }).returning('id')
        const days = [23, 24, 25, 26, 27].map((d) => ({ lunch_week_id: (week as { id: string }).id, day: `2026-11-${d}`, menu_details: `Menu of ${database} on the ${d}th` }))
        await trx('lunch_day').insert(days)
      })
    } finally {
      await db.destroy()
    }
  })
}
