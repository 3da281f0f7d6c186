import type { Knex } from 'knex'
import { createDatabase, databaseExists } from '../postgres/admin.js'
import { createKnex, databaseOf, databaseUrl } from '../postgres/connection.js'
import { catalogMigrations, migrateToLatest, pendingMigrations } from '../postgres/migrations.js'
import { quoteIdentifier } from '../postgres/names.js'

export interface CatalogPreparation {
  created: boolean
  applied: string[]
}

/** Creates the catalog database when missing and brings it to its latest migration. */
export async function prepareCatalog (catalogUrl: string): Promise<CatalogPreparation> {
  const created = await ensureDatabase(catalogUrl)
  const db = createKnex(catalogUrl, { max: 1, applicationName: 'school-lunch:migrate' })
  try {
    return { created, applied: await migrateToLatest(db, catalogMigrations) }
  } finally {
    await db.destroy()
  }
}

export interface CatalogState {
  exists: boolean
  pending: string[]
}

/** What prepareCatalog would do, without doing it. */
export async function inspectCatalog (catalogUrl: string): Promise<CatalogState> {
  const admin = createKnex(databaseUrl(catalogUrl, 'postgres'), { max: 1 })
  try {
    if (!await databaseExists(admin, databaseOf(catalogUrl))) {
      return { exists: false, pending: await catalogMigrations.names() }
    }
  } finally {
    await admin.destroy()
  }
  const db = createKnex(catalogUrl, { max: 1 })
  try {
    return { exists: true, pending: await pendingMigrations(db, catalogMigrations) }
  } finally {
    await db.destroy()
  }
}

export function openCatalog (catalogUrl: string, poolSize: number): Knex {
  return createKnex(catalogUrl, { max: poolSize, applicationName: 'school-lunch:catalog' })
}

async function ensureDatabase (url: string): Promise<boolean> {
  const admin = createKnex(databaseUrl(url, 'postgres'), { max: 1, applicationName: 'school-lunch:migrate' })
  try {
    if (await databaseExists(admin, databaseOf(url))) return false
    const created = await createDatabase(admin, databaseOf(url)) === 'created'
    // School roles have no business in the catalog.
    if (created) await admin.raw(`REVOKE CONNECT, TEMPORARY ON DATABASE ${quoteIdentifier(databaseOf(url))} FROM PUBLIC`)
    return created
  } finally {
    await admin.destroy()
  }
}
