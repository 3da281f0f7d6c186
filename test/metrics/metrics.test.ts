import t from 'tap'
import { testApp } from '../helpers/app.js'

/*
 * GET /metrics from prom-client: process metrics, request durations by
 * route pattern, the service's figures; one registry per app, and no
 * label that names a school or holds a URL.
 */

interface Sample { name: string, labels: Record<string, string>, value: number }

function samples (text: string): Sample[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) throw new Error(`not a sample line: ${line}`)
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']))
    return { name: match[1] ?? '', labels, value: Number(match[3]) }
  })
}

function types (text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']))
}

const durationCount = (all: Sample[], route: string, method: string, statusClass: string): number | undefined =>
  all.find((s) => s.name === 'http_request_duration_seconds_count' && s.labels.route === route && s.labels.method === method && s.labels.status_class === statusClass)?.value

t.test('request durations by route pattern, method and status class; process metrics beside them', async (t) => {
  const { app, auth } = await testApp(t, 'metroute', { schools: ['alpha'] })
  t.equal((await app.inject({ url: '/api/lunch-weeks', headers: auth('alpha') })).statusCode, 200)
  t.equal((await app.inject({ url: '/api/lunch-weeks/424242', headers: auth('alpha') })).statusCode, 404)
  t.equal((await app.inject({ url: '/api/lunch-weeks/434343', headers: auth('alpha') })).statusCode, 404)
  t.equal((await app.inject({ url: '/no/such/place/989898' })).statusCode, 404)
  t.equal((await app.inject({ method: 'DELETE', url: '/api/lunch-weeks/1' })).statusCode, 401)

  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const all = samples(res.body)
  t.equal(durationCount(all, '/api/lunch-weeks', 'GET', '2xx'), 1)
  t.equal(durationCount(all, '/api/lunch-weeks/:id', 'GET', '4xx'), 2, 'two ids, one series: the route pattern')
  t.equal(durationCount(all, 'unmatched', 'GET', '4xx'), 1, 'no route: the fixed label')
  t.equal(durationCount(all, '/api/lunch-weeks/:id', 'DELETE', '4xx'), 1, 'refused before the handler, under its route still')
  // Label values only: a sample's value (a heap size, say) may hold the digits.
  t.notOk(all.some((s) => Object.values(s.labels).some((value) => /424242|434343|989898/.test(value))), 'no URL of a request in any label')

  const declared = types(res.body)
  t.equal(declared.get('http_request_duration_seconds'), 'histogram')
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds']) {
    t.ok(declared.has(name), `${name}: prom-client's process metrics`)
  }
})

t.test('Prometheus names, and labels per server at most: never a school', async (t) => {
  const { app, auth } = await testApp(t, 'metnames', { schools: ['alpha', 'beta'] })
  for (const slug of ['alpha', 'beta']) t.equal((await app.inject({ url: '/api/lunch-weeks', headers: auth(slug) })).statusCode, 200)
  t.equal((await app.inject('/api/public/schools/alpha/lunch-weeks/2026-11-23')).statusCode, 404)
  const text = (await app.inject('/metrics')).body

  for (const [name, type] of types(text)) {
    if (type === 'counter') t.match(name, /_total$/, `counter ${name} ends in _total`)
    if (/duration|lag|seconds/.test(name)) t.match(name, /_seconds(_total)?$/, `${name} is in seconds`)
  }
  const labelNames = new Set(samples(text).filter((s) => !/^(process|nodejs)_/.test(s.name)).flatMap((s) => Object.keys(s.labels)))
  t.same([...labelNames].sort(), ['le', 'method', 'reason', 'route', 'server', 'status_class'], 'the service\'s labels')
  t.notOk(/alpha|beta/.test(text), 'no school in any name or label')
  t.match(text, /^tenant_server_slot_waits_total\{server="default"\} \d+$/m, 'the budget per server')
})

t.test('each app has a registry of its own', async (t) => {
  const one = await testApp(t, 'metone', { schools: ['alpha'] })
  const two = await testApp(t, 'mettwo', { schools: ['alpha'] })
  for (let i = 0; i < 3; i++) t.equal((await one.app.inject({ url: '/api/lunch-weeks', headers: one.auth('alpha') })).statusCode, 200)
  t.equal((await two.app.inject({ url: '/api/lunch-weeks', headers: two.auth('alpha') })).statusCode, 200)
  t.equal(durationCount(samples((await one.app.inject('/metrics')).body), '/api/lunch-weeks', 'GET', '2xx'), 3)
  const second = samples((await two.app.inject('/metrics')).body)
  t.equal(durationCount(second, '/api/lunch-weeks', 'GET', '2xx'), 1, 'the other app counted its own request only')
  t.ok(second.some((s) => s.name === 'process_cpu_user_seconds_total'), 'and has the process metrics too')
})

t.test('METRICS=false: no /metrics', async (t) => {
  const { app } = await testApp(t, 'metoff', { env: { METRICS: 'false' } })
  t.equal((await app.inject('/metrics')).statusCode, 404)
  t.notOk(app.hasDecorator('metrics'), 'no registry')
})
