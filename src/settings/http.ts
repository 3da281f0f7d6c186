import { settingGroup } from './setting.js'

export const http = settingGroup({
  title: 'HTTP',
  settings: [
    { name: 'HOST', kind: 'text', default: '127.0.0.1', format: 'an address', meaning: 'the address the API listens on', readBy: ['API'] },
    { name: 'PORT', kind: 'integer', default: 3000, min: 0, max: 65535, meaning: 'the port the API listens on', readBy: ['API'] },
    {
      name: 'LOG_LEVEL',
      kind: 'choice',
      values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      meaning: 'pino log level',
      readBy: ['API']
    }
  ]
})

export const limits = settingGroup({
  title: 'Limits and proxies',
  settings: [
    {
      name: 'RATE_LIMIT_MAX',
      kind: 'integer',
      default: 0,
      production: 1200,
      min: 0,
      max: 1_000_000,
      meaning: 'requests per school per window; 0 turns the limit off',
      note: 'Requests per school per window (0 = off). Default: off in development and test, 1200 in production.',
      example: '1200',
      readBy: ['API']
    },
    { name: 'RATE_LIMIT_WINDOW_MS', kind: 'integer', default: 60_000, min: 1_000, max: 3_600_000, meaning: 'the rate limit window, in milliseconds', readBy: ['API'] },
    {
      name: 'PUBLIC_RATE_LIMIT_MAX',
      kind: 'integer',
      default: 0,
      production: 600,
      min: 0,
      max: 1_000_000,
      meaning: 'public requests per client address per window; 0 turns the limit off',
      note: 'Requests per client address per window on the public routes (0 = off). Default: off in development and test, 600 in production.',
      example: '600',
      readBy: ['API']
    },
    {
      name: 'PUBLIC_RATE_LIMIT_WINDOW_MS',
      kind: 'integer',
      default: 60_000,
      min: 1_000,
      max: 3_600_000,
      meaning: 'the public rate limit window, in milliseconds',
      readBy: ['API']
    },
    {
      name: 'PUBLIC_WEEK_WINDOW_YEARS',
      kind: 'integer',
      default: 2,
      min: 1,
      max: 100,
      meaning: 'the public page answers weeks this many years before or after today, and refuses others before any lookup',
      note: 'The public page answers weeks this many years before or after today; a weekOf further away is refused (400 WEEK_OUT_OF_RANGE) before any lookup.',
      readBy: ['API']
    },
    {
      name: 'TRUST_PROXY',
      kind: 'trustProxy',
      default: 'false',
      defaultText: '`false`',
      format: '`false`, `true`, or addresses and CIDR ranges (and `loopback`, `linklocal`, `uniquelocal`), comma-separated; no hop counts',
      meaning: "whose X-Forwarded-For gives the client address: nobody's, anyone's (`true`: only behind a proxy that overwrites it), or the listed proxies'",
      note: "Whose X-Forwarded-For header gives the client address (which the public rate limit counts by). false: nobody's, the peer address counts. " +
        "Behind a load balancer, list its addresses or CIDR ranges (comma-separated; loopback, linklocal and uniquelocal also work), or every client shares the balancer's address and budget. " +
        'true believes any peer: only when every request arrives through a proxy that overwrites the header. ' +
        'Hop counts are not accepted (Fastify would trust no proxy at all with one).',
      readBy: ['API']
    }
  ]
})

export const browsers = settingGroup({
  title: 'Browsers and API documentation',
  settings: [
    { name: 'CORS_ORIGINS', kind: 'list', default: [], meaning: 'browser origins allowed by CORS, comma-separated; empty allows none', readBy: ['API'] },
    {
      name: 'DOCS_UI',
      kind: 'boolean',
      default: true,
      production: false,
      meaning: 'Swagger UI at /docs (the OpenAPI document at /docs/json is served either way)',
      note: 'Swagger UI at /docs. Default: on in development and test, off in production. The OpenAPI document at /docs/json is served either way.',
      example: 'false',
      readBy: ['API']
    }
  ]
})

export const operations = settingGroup({
  title: 'Metrics and shutdown',
  settings: [
    {
      name: 'METRICS',
      kind: 'boolean',
      default: true,
      meaning: "GET /metrics: prom-client's process metrics, the request-duration histogram and the pool figures; false turns all three off",
      readBy: ['API']
    },
    {
      name: 'SHUTDOWN_DRAIN_MS',
      kind: 'integer',
      default: 2_000,
      min: 0,
      max: 60_000,
      meaning: 'on SIGTERM, /ready answers 503 at once and the listener keeps accepting this long before it closes; 0 closes at once',
      note: 'On SIGTERM, /ready answers 503 at once and the listener keeps accepting for this many milliseconds (answers carry Connection: close), ' +
        'so that the load balancer sees /ready fail and stops sending new connections before the listener closes. ' +
        'The HAProxy configuration under deploy/ checks /ready with inter 500ms fall 2: a process is out of rotation about 1 s after /ready fails, so 2000 leaves a margin. ' +
        "0 closes at once: connections still in the kernel's accept queue are then reset. SIGINT (Ctrl-C) never drains.",
      readBy: ['API']
    }
  ]
})
