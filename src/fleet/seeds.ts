import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Knex } from 'knex'
import type { School, seedsRepository } from '../catalog/schools.js'
import { databaseMessage } from '../postgres/connection.js'
import { DirectoryMigrationSource, MIGRATION_XACT_LOCK_SQL } from '../postgres/migrations.js'
import type { SchoolTask } from './for-each-school.js'

/*
 * Provisioning hooks: the modules of database/seeds/ run once for a school,
 * after its migrations, the first time migrate (or schools add) provisions
 * it. Each exports a default `async ({ school, db })`, like a task of
 * schools exec, and runs as the school's own role in one transaction.
 */

/** The seed modules of a folder, named and ordered like migrations (file name without extension). */
export class SeedSource {
  private readonly files: DirectoryMigrationSource

  constructor (readonly directory: string) {
    this.files = new DirectoryMigrationSource(directory)
  }

  async names (): Promise<string[]> {
    return await this.files.names()
  }

  async load (name: string): Promise<SchoolTask> {
    const entry = (await this.files.getMigrations()).find((file) => file.name === name)
    if (entry === undefined) throw new Error(`no seed ${name} in ${this.directory}`)
    const seed = (await import(pathToFileURL(entry.file).href) as { default?: unknown }).default
    if (typeof seed !== 'function') throw new Error(`${entry.file} must export a default async function ({ school, db })`)
    return seed as SchoolTask
  }
}

export const appSeeds = new SeedSource(fileURLToPath(new URL('../../database/seeds/', import.meta.url)))

/** A seed failed; its transaction was rolled back and nothing of it was recorded. */
export class SeedFailed extends Error {
  override name = 'SeedFailed'
  constructor (readonly seed: string, cause: unknown) {
    super(`seed ${seed}: ${databaseMessage(cause)}`)
  }
}

export interface SchoolSeeding {
  school: School
  /** Logged in as the school's own role. */
  db: Knex
  records: ReturnType<typeof seedsRepository>
  source: SeedSource
}

/**
 * Runs, in name order, the seeds the catalog does not record for the
 * school, and returns those that ran. Each runs in one transaction that
 * first takes the school's migration lock (so two runs, or a move, wait
 * for each other) and looks again at the catalog under it. The catalog
 * records the seed before the transaction commits: a crash between the
 * two loses that seed, and can never make it run twice.
 */
export async function runSchoolSeeds ({ school, db, records, source }: SchoolSeeding): Promise<string[]> {
  const ran: string[] = []
  for (const name of await source.names()) {
    const seed = await source.load(name).catch((error: unknown) => { throw new SeedFailed(name, error) })
    const didRun = await db.transaction(async (trx) => {
      await trx.raw(MIGRATION_XACT_LOCK_SQL)
      if ((await records.seedsRun(school.id)).includes(name)) return false
      await seed({ school, db: trx })
      await records.recordSeeds(school.id, [name])
      return true
    }).catch((error: unknown) => { throw new SeedFailed(name, error) })
    if (didRun) ran.push(name)
  }
  return ran
}
