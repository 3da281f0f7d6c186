/*
 * npm run migrate [-- --school <slug>]... [--concurrency N] [--dry-run]
 *                 [--failed] [--rollback [--to <name> | --undo-baseline --yes]]
 *                 [--no-template] [--no-seed] [--status]
 *
 * Migrates the catalog, then creates every missing school database (cloned
 * from its server's template) and brings each to the latest app migration;
 * a school provisioned for the first time then gets its seeds.
 * Exit code 0 only when every school succeeded. The command itself is in
 * scripts/migrate/.
 */
import { runProgram } from '../src/cli/program.js'
import { migrateMain } from './migrate/main.js'

await runProgram(migrateMain, { failure: (error) => `Migration stopped: ${(error as Error).message}` })
