import { readFile, writeFile } from 'node:fs/promises'
import t from 'tap'
import { readSettings } from '../../src/env-reader.js'
import { settings } from '../../src/settings/all.js'
import { testApp } from '../helpers/app.js'

/*
 * The OpenAPI document is what SPA developers build their clients from, so
 * a change of how schemas are written must not change it by accident. The
 * document is compared with a copy checked in beside the tests, as parsed
 * JSON (key order aside). A deliberate change of the API rewrites the copy:
 *   OPENAPI_SNAPSHOT=update TEST_PG_PORT=… npx tap test/http/openapi-document.test.ts
 * and its diff goes into the same commit as the change.
 */

const SNAPSHOT = new URL('../fixtures/openapi.json', import.meta.url)

t.test('the OpenAPI document is the checked-in one', async (t) => {
  const { app } = await testApp(t, 'oadoc')
  const res = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const document = res.json() as unknown
  if (readSettings(process.env, (read) => read.choice(settings.OPENAPI_SNAPSHOT)) === 'update') {
    await writeFile(SNAPSHOT, JSON.stringify(document, null, 2) + '\n')
    t.comment('test/fixtures/openapi.json rewritten')
  }
  const expected = JSON.parse(await readFile(SNAPSHOT, 'utf8')) as unknown
  t.same(document, expected, 'same paths, operations, parameters and schemas as test/fixtures/openapi.json')
})
