import { setTimeout as sleep } from 'node:timers/promises'

export { sleep }

/**
 * Polls `check` every `everyMs` until it holds; resolves to the time it took,
 * and rejects naming `what` once `timeoutMs` have passed. For a state the
 * test cannot await directly, never in place of a promise it could await.
 */
export async function waitFor (what: string, timeoutMs: number, check: () => boolean | Promise<boolean>, everyMs = 20): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await check()) return Date.now() - started
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}
