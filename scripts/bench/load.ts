import autocannon from 'autocannon'

export interface LoadResult {
  requests: number
  rps: number
  p50: number
  p99: number
  errors: number
  non2xx: number
}

export interface LoadOptions {
  url: string
  connections: number
  durationSeconds: number
  /** Called for every request: path and headers to send. */
  next: () => { path: string, headers: Record<string, string> }
}

/** Drives one load run with autocannon (in this process; the server runs in another). */
export async function load (options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
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
  })
  return {
    requests: result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx
  }
}
