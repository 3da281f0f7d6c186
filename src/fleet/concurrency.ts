/**
 * Runs `task` over `items` with at most `limit` running at once and returns
 * the results in the order of `items`. A task that throws rejects the whole
 * call, so callers that must not stop catch inside their task.
 */
export async function runConcurrently<T, R> (items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await task(items[index] as T, index)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  return results
}
