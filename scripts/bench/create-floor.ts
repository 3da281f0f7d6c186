import { runConcurrently } from '../../src/fleet/concurrency.js'
import { TEMPLATE_DATABASE } from '../../src/fleet/template.js'
import { createKnex } from '../../src/postgres/connection.js'
import { quoteIdentifier } from '../../src/postgres/names.js'

export interface CreateFloor {
  databases: number
  seconds: number
  perSecond: number
}

/**
 * This machine's floor for new schools: CREATE DATABASE … TEMPLATE of each
 * server's template, `perServer` on every server at once, `atOnce` at a
 * time on each (as migrate does), with nothing of migrate around it. A
 * database is some 250 files, so this is mostly the file system's cost,
 * which on some file systems depends on how many files were deleted in
 * the last minutes: measure it close to what it is compared with. The
 * databases stay until `drop` (untimed), since dropping them would slow
 * what is measured next the same way.
 */
export async function createFloor (serverUrls: readonly string[], prefix: string, perServer: number, atOnce: number): Promise<{ floor: CreateFloor, drop: () => Promise<void> }> {
  const admins = serverUrls.map((url) => createKnex(url, { max: atOnce, applicationName: 'school-lunch:bench' }))
  const names = Array.from({ length: perServer }, (_, i) => `${prefix}_floor_${String(i + 1).padStart(4, '0')}`)
  const drop = async (): Promise<void> => {
    await Promise.all(admins.map(async (admin) => {
      for (const name of names) await admin.raw(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)}`).catch(() => {})
      await admin.destroy()
    }))
  }
  try {
    const started = performance.now()
    await Promise.all(admins.map(async (admin) => await runConcurrently(names, atOnce, async (name) => {
      await admin.raw(`CREATE DATABASE ${quoteIdentifier(name)} TEMPLATE ${quoteIdentifier(TEMPLATE_DATABASE)} STRATEGY FILE_COPY`)
    })))
    const seconds = (performance.now() - started) / 1000
    const databases = perServer * serverUrls.length
    return { floor: { databases, seconds, perSecond: databases / seconds }, drop }
  } catch (error) {
    await drop()
    throw error
  }
}
