import autocannon from 'autocannon'

export interface LoadResult {
  requests: number
  rps: number
  p50: number
  p99: number
  /** The longest request, ms. */
  max: number
  errors: number
  non2xx: number
}

export interface LoadOptions {
  url: string
  connections: number
  durationSeconds: number
  /** Called for every request: path and headers to send. */
  next: () => { path: string, headers: Record<string, string> }
  /** Hears every response as it comes: its status and how long it took, ms. */
  onResponse?: (statusCode: number, ms: number) => void
}

/** Drives one load run with autocannon (in this process; the server runs in another). */
export async function load (options: LoadOptions): Promise<LoadResult> {
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({
      url: options.url,
      connections: options.connections,
      duration: options.durationSeconds,
      requests: [{
        method: 'GET',
        setupRequest: (request) => {
          const { path, headers } = options.next()
          return { ...request, path, headers: { ...request.headers, ...headers } }
        }
      }]
    }, (error: Error | null, done) => { if (error === null) resolve(done); else reject(error) })
    const { onResponse } = options
    if (onResponse !== undefined) instance.on('response', (_client, statusCode, _bytes, ms) => { onResponse(statusCode, ms) })
  })
  return {
    requests: result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx
  }
}
