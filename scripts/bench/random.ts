/* Seeded randomness, so two runs of the bench or of the isolation check draw the same traffic. */

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
