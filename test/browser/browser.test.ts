import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import path from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import t from 'tap'
import type { Test } from 'tap'
import { projectRoot } from '../../src/config.js'
import { readSettings } from '../../src/env-reader.js'
import { settings } from '../../src/settings/all.js'
import { testApp, type TestApp } from '../helpers/app.js'

/*
 * What docs/spa.md promises browsers, proven in one: Debian's Chromium,
 * driven by playwright-core, against the service on loopback. Pages of two
 * other origins call the API, one listed in CORS_ORIGINS and one not; the
 * public menu is read twice and then revalidated; /docs renders under its
 * CSP. Skipped only when BROWSER_TESTS=off says so: without Chromium and
 * without that setting, the test fails and says how to fix it.
 */

const CHROMIUM = '/usr/bin/chromium'
// The flags known to work on these machines: without the background
// networking ones, Chromium's own connections out are refused, many at a time.
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** Screenshots are kept here for a person to look at; git ignores the folder. */
const ARTIFACTS = path.join(projectRoot, 'test-artifacts', 'browser')
const MONDAY = '2026-11-23'

/** A blank page on its own loopback port: an origin for the browser's requests to come from. */
async function pageOrigin (t: Test): Promise<string> {
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>SPA</title><p>SPA</p>')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return `http://127.0.0.1:${address.port}`
}

/** The request lines the app logged: method, path and status of every request that reached it. */
function served (ctx: TestApp, method: string, path: string): number[] {
  return ctx.logs.filter((line) => line.msg === 'request' && line.method === method && line.path === path).map((line) => line.statusCode as number)
}

interface FetchResult { ok: true, status: number, body: string, etag: string | null }
interface FetchFailure { ok: false, error: string }
interface FetchInit { method?: string, headers?: Record<string, string>, body?: string, cache?: 'default' | 'no-cache' }

/** fetch() run in the page, so the browser applies its CORS and cache rules. */
async function browserFetch (page: Page, url: string, init: FetchInit = {}): Promise<FetchResult | FetchFailure> {
  return await page.evaluate(async ({ url, init }) => {
    try {
      const res = await fetch(url, init)
      return { ok: true as const, status: res.status, body: await res.text(), etag: res.headers.get('etag') }
    } catch (error) {
      return { ok: false as const, error: String(error) }
    }
  }, { url, init })
}

if (readSettings(process.env, (read) => read.choice(settings.BROWSER_TESTS)) === 'off') {
  t.plan(0, 'BROWSER_TESTS=off: the browser tests are skipped on purpose')
} else if (!existsSync(CHROMIUM)) {
  t.fail(`browser tests: no Chromium at ${CHROMIUM}. Install Debian's package (apt-get install chromium), ` +
    'or set BROWSER_TESTS=off to skip these tests on purpose')
} else {
  t.test('in a real browser', async (t) => {
    const spa = await pageOrigin(t)
    const stranger = await pageOrigin(t)
    const ctx = await testApp(t, 'browser', { schools: ['alpha', 'beta'], env: { CORS_ORIGINS: spa } })
    const api = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS })
    t.teardown(async () => { await browser.close() })
    // A token for two schools: X-School picks one, as an SPA with a school switcher does.
    const token = ctx.token({ sub: 'teacher', schools: ['alpha', 'beta'] })
    const staffHeaders = { Authorization: `Bearer ${token}`, 'X-School': 'alpha', 'Content-Type': 'application/json' }

    t.test('an origin in CORS_ORIGINS: preflight and call succeed', async (t) => {
      const page = await browser.newPage()
      await page.goto(spa)
      const created = await browserFetch(page, `${api}/api/lunch-weeks`, { method: 'POST', headers: staffHeaders, body: JSON.stringify({ weekOf: MONDAY }) })
      t.match(created, { ok: true, status: 201 }, 'the page reads the answer')
      t.match(served(ctx, 'OPTIONS', '/api/lunch-weeks'), [204], 'after a preflight the API allowed')
      t.same(served(ctx, 'POST', '/api/lunch-weeks'), [201], 'the call reached the API once')
      const week = JSON.parse(created.ok ? created.body : '{}') as { id: string }
      const published = await browserFetch(page, `${api}/api/lunch-weeks/${week.id}`, { method: 'PATCH', headers: staffHeaders, body: JSON.stringify({ isPublished: true }) })
      t.match(published, { ok: true, status: 200 }, 'PATCH, with its own preflight')
      const me = await browserFetch(page, `${api}/api/me`, { headers: staffHeaders })
      t.match(me, { ok: true, status: 200, body: /"slug":"alpha"/ }, 'X-School chose the school')
      await page.close()
    })

    t.test('an origin not listed: the browser refuses, the call never reaches the API', async (t) => {
      const page = await browser.newPage()
      await page.goto(stranger)
      const before = served(ctx, 'GET', '/api/me').length
      const refused = await browserFetch(page, `${api}/api/me`, { headers: staffHeaders })
      t.match(refused, { ok: false, error: /TypeError/ }, 'fetch fails in the page')
      t.equal(served(ctx, 'GET', '/api/me').length, before, 'only the preflight was sent')
      const publicRead = await browserFetch(page, `${api}/api/public/schools/alpha/lunch-weeks/${MONDAY}`)
      t.match(publicRead, { ok: false, error: /TypeError/ }, 'even a simple GET cannot be read')
      await page.close()
    })

    t.test('the public menu: cached for max-age, then revalidated by ETag', async (t) => {
      const page = await browser.newPage()
      await page.goto(spa)
      const url = `${api}/api/public/schools/alpha/lunch-weeks/${MONDAY}`
      const path = `/api/public/schools/alpha/lunch-weeks/${MONDAY}`
      const seen = (): number[] => served(ctx, 'GET', path).slice(before)
      const before = served(ctx, 'GET', path).length
      const first = await browserFetch(page, url)
      t.match(first, { ok: true, status: 200, etag: /^"/ }, 'read, with its ETag exposed to the page')
      const second = await browserFetch(page, url)
      t.same(second, first, 'read again: the same answer')
      t.same(seen(), [200], 'from the browser\'s cache within max-age: the API saw one request')
      const revalidated = await browserFetch(page, url, { cache: 'no-cache' })
      t.same(revalidated, first, 'revalidated: the page still gets the whole answer')
      t.same(seen(), [200, 304], 'the browser sent If-None-Match and the API answered 304')
      await page.close()
    })

    t.test('/docs renders the operations under its CSP, from this server only', async (t) => {
      const page = await browser.newPage()
      page.setDefaultTimeout(15_000)
      const violations: string[] = []
      const requests: string[] = []
      page.on('console', (message) => { if (/Content Security Policy/i.test(message.text())) violations.push(message.text()) })
      page.on('request', (request) => { requests.push(request.url()) })
      await page.goto(`${api}/docs`)
      await page.locator('.opblock').first().waitFor()
      const operations = await page.locator('.opblock-summary-path').allTextContents()
      for (const path of ['/api/lunch-weeks', '/api/lunch-weeks/{id}', '/api/lunch-weeks/{id}/days/{dayId}', '/api/me', '/api/public/schools/{slug}/lunch-weeks/{weekOf}']) {
        t.ok(operations.some((text) => text.replace(/\u200b/g, '') === path), `${path} is shown`)
      }
      await mkdir(ARTIFACTS, { recursive: true })
      await page.screenshot({ path: path.join(ARTIFACTS, 'docs.png'), fullPage: true })

      // A bearer token entered in the page, then used by "Try it out".
      const alphaToken = ctx.auth('alpha').authorization.replace(/^Bearer /, '')
      await page.locator('.auth-wrapper .authorize').click()
      const dialog = page.locator('.modal-ux')
      await dialog.locator('input').first().fill(alphaToken)
      await dialog.getByRole('button', { name: 'Apply credentials' }).click()
      await dialog.locator('button.btn-done').click()
      const me = page.locator('.opblock').filter({ hasText: '/api/me' })
      await me.locator('.opblock-summary').click()
      await me.getByRole('button', { name: 'Try it out' }).click()
      await me.getByRole('button', { name: 'Execute' }).click()
      const status = me.locator('.live-responses-table .response .response-col_status').first()
      await status.waitFor()
      t.equal((await status.textContent())?.trim(), '200', 'GET /api/me answered 200 with the token entered')
      await page.screenshot({ path: path.join(ARTIFACTS, 'docs-try-it-out.png'), fullPage: true })
      t.same(violations, [], 'no CSP violation')
      t.same(requests.filter((url) => !url.startsWith(`${api}/`) && !url.startsWith('data:')), [], 'nothing from another host')
      await page.close()
    })
  })
}
