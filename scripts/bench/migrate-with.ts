/*
 * `npm run migrate`, the same command line and code, with the app
 * migrations read from BENCH_MIGRATIONS_DIR instead of
 * database/app_migrations: how scenario C times a rollout of a migration
 * the project does not have. Never used outside the bench.
 */
import { runProgram } from '../../src/cli/program.js'
import { DirectoryMigrationSource } from '../../src/postgres/migrations.js'
import { migrateMain } from '../migrate/main.js'

const directory = process.env.BENCH_MIGRATIONS_DIR
await runProgram(async (program) => {
  if (directory === undefined || directory === '') throw new Error('BENCH_MIGRATIONS_DIR is required')
  return await migrateMain(program, new DirectoryMigrationSource(directory))
}, { failure: (error) => `Migration stopped: ${(error as Error).message}` })
