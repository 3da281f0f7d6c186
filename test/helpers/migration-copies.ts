import fs from 'node:fs'
import path from 'node:path'
import type { Test } from 'tap'
import { projectRoot } from '../../src/config.js'
import { DirectoryMigrationSource } from '../../src/postgres/migrations.js'

/** The app's first migration: the one that creates the lunch tables. */
export const BASE = '20261123000000_create_lunch_menu'

export interface MigrationCopies {
  source: DirectoryMigrationSource
  /** Adds a migration `name` that adds a column `allergens` to lunch_day (and drops it on the way down). */
  addAllergens: (name: string) => void
  /** Writes a migration `name` with this TypeScript source. */
  write: (name: string, source: string) => void
  remove: (name: string) => void
}

/**
 * A folder of `.data/` holding a copy of the app's baseline migration only,
 * for a test that adds and removes migrations of its own without touching
 * database/app_migrations. Emptied first and when the test ends.
 */
export function baselineMigrations (t: Test, folder: string): MigrationCopies {
  const dir = path.resolve(projectRoot, '.data', folder)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  t.teardown(() => { fs.rmSync(dir, { recursive: true, force: true }) })
  fs.copyFileSync(path.resolve(projectRoot, `database/app_migrations/${BASE}.ts`), path.join(dir, `${BASE}.ts`))
  return {
    source: new DirectoryMigrationSource(dir),
    addAllergens: (name) => {
      fs.writeFileSync(path.join(dir, `${name}.ts`), `import type { Knex } from 'knex'
export async function up (knex: Knex): Promise<void> {
  await knex.schema.alterTable('lunch_day', (table) => { table.text('allergens') })
}
export async function down (knex: Knex): Promise<void> {
  await knex.schema.alterTable('lunch_day', (table) => { table.dropColumn('allergens') })
}
`)
    },
    write: (name, source) => { fs.writeFileSync(path.join(dir, `${name}.ts`), source) },
    remove: (name) => { fs.rmSync(path.join(dir, `${name}.ts`)) }
  }
}
