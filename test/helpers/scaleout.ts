import path from 'node:path'
import type { Test } from 'tap'
import { projectRoot } from '../../src/config.js'
import { readSettings } from '../../src/env-reader.js'
import { settings } from '../../src/settings/all.js'
import { missingDaemons, startHaProxy as startHaProxyDaemon, startPgBouncer as startPgBouncerDaemon, type HaProxy, type HaProxyOptions, type PgBouncer } from '../../scripts/deploy/daemons.js'

export type { HaProxy, PgBouncer }

/*
 * The real HAProxy and PgBouncer of Debian's packages, run from the files
 * under deploy/ (scripts/deploy/daemons.ts). `.ci/run` installs both;
 * SCALEOUT_TESTS=off skips their tests on purpose, and without either
 * binary those tests fail and say how to install them.
 */

/** True when the file's tests may run; otherwise its plan is set (skipped) or it has failed saying why. */
export function scaleoutToolsReady (t: Test): boolean {
  if (readSettings(process.env, (read) => read.choice(settings.SCALEOUT_TESTS)) === 'off') {
    t.plan(0, 'SCALEOUT_TESTS=off: the HAProxy and PgBouncer tests are skipped on purpose')
    return false
  }
  const missing = missingDaemons()
  if (missing !== null) {
    t.fail(`scale-out tests: ${missing}, or set SCALEOUT_TESTS=off to skip these tests on purpose`)
    return false
  }
  return true
}

/** deploy/pgbouncer.ini in `.data/<name>`, stopped and removed when the test ends. */
export async function startPgBouncer (t: Test, name: string, serverPort: number, roleSecret: string): Promise<PgBouncer> {
  const pgbouncer = await startPgBouncerDaemon(path.join(projectRoot, '.data', name), serverPort, roleSecret)
  t.teardown(pgbouncer.remove)
  return pgbouncer
}

/** deploy/haproxy.cfg in front of three API processes, stopped when the test ends. */
export async function startHaProxy (t: Test, options: HaProxyOptions): Promise<HaProxy> {
  const haproxy = await startHaProxyDaemon(options)
  t.teardown(haproxy.stop)
  return haproxy
}
