import { execFile } from 'node:child_process'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { projectRoot } from '../../src/config.js'
import type { Observed } from '../fixtures/spa-client/observed.js'
import { testApp } from '../helpers/app.js'

/*
 * The SPA developer's path, against the running service: types generated
 * from its /docs/json with openapi-typescript, a small openapi-fetch client
 * (test/fixtures/spa-client/) compiled by tsc without a cast, then run on
 * every route: create, list, read, edit, publish, read publicly, a refused
 * request with its code, delete. A change that breaks the document for
 * clients fails here.
 */

const run = promisify(execFile)
const CLIENT_DIR = path.join(projectRoot, 'test/fixtures/spa-client')
const GENERATED = path.join(CLIENT_DIR, 'api.d.ts')

/** What the client module exports; imported by URL, so that the suite's own typecheck leaves it to this test. */
interface SpaClient {
  callEveryRoute: (baseUrl: string, token: string, school: string, monday: string, tuesday: string) => Promise<Observed>
}

/** A project binary (node_modules/.bin), as `npx` would run it; its output on failure. */
async function bin (name: string, args: string[]): Promise<{ ok: boolean, output: string }> {
  try {
    const { stdout, stderr } = await run(path.join(projectRoot, 'node_modules/.bin', name), args, { cwd: projectRoot, timeout: 120_000 })
    return { ok: true, output: stdout + stderr }
  } catch (error) {
    const { stdout = '', stderr = '', message } = error as { stdout?: string, stderr?: string, message: string }
    return { ok: false, output: `${message}\n${stdout}${stderr}` }
  }
}

t.test('a typed client generated from /docs/json compiles without a cast and works', async (t) => {
  const { app, auth } = await testApp(t, 'spacli', { schools: ['alpha'] })
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await rm(GENERATED, { force: true }) })

  const generated = await bin('openapi-typescript', [`${baseUrl}/docs/json`, '--output', GENERATED])
  t.ok(generated.ok, 'openapi-typescript read the running service\'s document', { output: generated.output })
  const compiled = await bin('tsc', ['--project', path.join(CLIENT_DIR, 'tsconfig.json')])
  t.ok(compiled.ok, 'tsc --noEmit compiles the client against the generated types', { output: compiled.output })
  if (!generated.ok || !compiled.ok) return

  const { callEveryRoute } = await import(pathToFileURL(path.join(CLIENT_DIR, 'client.ts')).href) as SpaClient
  const token = auth('alpha').authorization.replace(/^Bearer /, '')
  const observed = await callEveryRoute(baseUrl, token, 'alpha', '2026-11-23', '2026-11-24')
  t.equal(observed.school, 'alpha', 'who the token is (GET /api/me)')
  t.match(observed.weekId, /^[1-9][0-9]*$/, 'a week created, its id a string')
  t.equal(observed.dayIds.length, 5, 'with its five days')
  t.same(observed.listedIds, [observed.weekId], 'listed')
  t.equal(observed.readDays, 5, 'read by the id that came back')
  t.equal(observed.editedMenu, 'Pumpkin soup, bread', 'a day edited by the ids that came back')
  t.equal(observed.published, true, 'published')
  t.equal(observed.publicMenu, 'Pumpkin soup, bread', 'read publicly, without a token')
  t.same(observed.publicDayIds, observed.dayIds, 'the same ids on the public page')
  t.same(observed.refused, { status: 400, code: 'WEEK_NOT_MONDAY' }, 'a refused request, with its code typed')
  t.equal(observed.deleted, 204, 'deleted')
})
