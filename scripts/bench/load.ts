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

/** A sampler of ranks 0..n-1 with Zipf's law (exponent s): rank 0 the busiest. */
export function zipf (n: number, s: number, random: () => number): () => number {
  const cumulative: number[] = []
  let total = 0
  for (let rank = 1; rank <= n; rank++) {
    total += 1 / rank ** s
    cumulative.push(total)
  }
  return () => {
    const target = random() * total
    let low = 0
    let high = n - 1
    while (low < high) {
      const mid = (low + high) >> 1
      if ((cumulative[mid] ?? 0) < target) low = mid + 1
      else high = mid
    }
    return low
  }
}

/** mulberry32: a small seeded PRNG, so runs draw the same traffic. */
export function seededRandom (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
