import { openCatalog, prepareCatalog } from '../../src/catalog/catalog.js'
import type { Config } from '../../src/config.js'
import { configuredProvisioning, hasFailures, migrateSchools } from '../../src/fleet/migrate-schools.js'
import { defaultDatabaseName } from '../../src/fleet/school-admin.js'
import type { Topology } from '../../src/postgres/topology.js'

/** The check's schools: iso-001 … iso-<count>. */
export function isolationSlugs (count: number): string[] {
  return Array.from({ length: count }, (_, i) => `iso-${String(i + 1).padStart(3, '0')}`)
}

/**
 * Puts the schools in the catalog (those already there are kept) and
 * migrates them. Resolves to each school's name and the count of databases
 * made, or to null after saying why the schools cannot be used.
 */
export async function prepareSchools (topology: Topology, config: Config, slugs: string[]): Promise<{ names: Record<string, string>, created: number } | null> {
  const names = Object.fromEntries(slugs.map((slug) => [slug, `Isolation school ${slug.slice(4)}`]))
  await prepareCatalog(topology.catalogUrl)
  const catalog = openCatalog(topology.catalogUrl, 1)
  try {
    await catalog('schools')
      .insert(slugs.map((slug) => ({ slug, name: names[slug], database_name: defaultDatabaseName(slug) })))
      .onConflict().ignore()
    const rows = await catalog('schools').whereIn('slug', slugs).select<Array<{ slug: string, name: string, database_name: string, status: string }>>('slug', 'name', 'database_name', 'status')
    const wrong = rows.filter((r) => r.status !== 'active' || r.database_name !== defaultDatabaseName(r.slug))
    if (rows.length !== slugs.length || wrong.length > 0) {
      process.stderr.write(`The catalog holds iso-NNN schools this check cannot use (suspended, or another database): ${wrong.map((r) => r.slug).join(', ')}\n`)
      return null
    }
    for (const row of rows) names[row.slug] = row.name
  } finally {
    await catalog.destroy()
  }
  const report = await migrateSchools(topology, { concurrency: config.migrateConcurrency, only: slugs, ...configuredProvisioning(config) })
  if (hasFailures(report)) {
    for (const s of report.schools.filter((s) => s.error !== null)) process.stderr.write(`migrate ${s.slug}: ${s.error}\n`)
    return null
  }
  return { names, created: report.schools.filter((s) => s.database === 'created' || s.database === 'cloned').length }
}
