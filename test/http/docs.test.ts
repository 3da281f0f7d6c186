import t from 'tap'
import { testApp } from '../helpers/app.js'
import { assertError } from '../helpers/assertions.js'

/*
 * /docs through app.inject: Swagger UI from the package's own files, its
 * page under a CSP that allows that page and nothing else, every other
 * reply under the deny-all one, and DOCS_UI to turn it off. That the page
 * really renders under its CSP is test/browser/browser.test.ts's part.
 */

const DENY_ALL = "default-src 'none';frame-ancestors 'none'"

t.test('Swagger UI at /docs', async (t) => {
  const { app } = await testApp(t, 'docsui')
  const page = await app.inject({ url: '/docs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /(^|;)default-src 'none'(;|$)/, 'the page denies by default')
  for (const directive of ["script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'"]) {
    t.ok(csp.split(';').includes(directive), `the page allows ${directive}`)
  }
  t.notMatch(csp, /unsafe-inline|unsafe-eval|https?:|\*/, 'no inline code, no other host')

  const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '')
  t.ok(assets.some((a) => a.endsWith('/swagger-ui-bundle.js')), 'the page loads the bundle')
  t.same(assets.filter((a) => !a.startsWith('/docs/static/')), [], 'every asset from this server\'s /docs/static/')
  for (const asset of assets) {
    const res = await app.inject({ url: asset })
    t.equal(res.statusCode, 200, `${asset} is served`)
    t.equal(res.headers['content-security-policy'], DENY_ALL, `${asset} keeps the deny-all CSP`)
  }

  const document = await app.inject({ url: '/docs/json' })
  t.equal(document.statusCode, 200)
  t.match(document.json(), { openapi: /^3\./, components: { securitySchemes: { bearerAuth: { scheme: 'bearer' } } } }, 'the document, with bearer auth to enter')
  t.equal(document.headers['content-security-policy'], DENY_ALL, 'the document keeps the deny-all CSP')
  for (const url of ['/health', '/api/lunch-weeks', '/api/public/schools/none/lunch-weeks/2026-11-23', '/docs/nothing']) {
    t.equal((await app.inject({ url })).headers['content-security-policy'], DENY_ALL, `${url} keeps the deny-all CSP`)
  }
})

t.test('DOCS_UI=false: no /docs page, the document still served', async (t) => {
  const { app } = await testApp(t, 'docsoff', { env: { DOCS_UI: 'false' } })
  assertError(t, await app.inject({ url: '/docs' }), 404, 'ROUTE_NOT_FOUND', '/docs')
  assertError(t, await app.inject({ url: '/docs/static/swagger-ui-bundle.js' }), 404, 'ROUTE_NOT_FOUND', 'its files')
  const document = await app.inject({ url: '/docs/json' })
  t.equal(document.statusCode, 200)
  t.match(document.json(), { openapi: /^3\./ })
})
