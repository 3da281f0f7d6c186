/**
 * Runs at most `limit` of the given functions at once; the others wait
 * their turn, first come, first served.
 */
export function concurrencyLimit (limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0
  const queue: Array<() => void> = []
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= limit) await new Promise<void>((resolve) => queue.push(resolve))
    else running++
    try {
      return await fn()
    } finally {
      const next = queue.shift()
      if (next === undefined) running--
      else next()
    }
  }
}
