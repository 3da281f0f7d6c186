/*
 * `npm run migrate`, the same command line and code, with the app
 * migrations read from BENCH_MIGRATIONS_DIR instead of
 * database/app_migrations: how scenario C times a rollout of a migration
 * the project does not have. Never used outside the bench.
 */
import { runProgram } from '../../src/cli/program.js'
import { readSettings } from '../../src/env-reader.js'
import { DirectoryMigrationSource } from '../../src/postgres/migrations.js'
import { settings } from '../../src/settings/all.js'
import { migrateMain } from '../migrate/main.js'

await runProgram(async (program) => {
  const directory = readSettings(process.env, (read) => read.text(settings.BENCH_MIGRATIONS_DIR))
  if (directory === null) throw new Error('BENCH_MIGRATIONS_DIR is required')
  return await migrateMain(program, new DirectoryMigrationSource(directory))
}, { failure: (error) => `Migration stopped: ${(error as Error).message}` })
