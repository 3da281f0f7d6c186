import type { IsolationResult, Unexpected } from './types.js'

/** Unexpected responses counted by reason, numbers and dates folded (`week N (D) came back without its days`). */
export function summarizeReasons (unexpected: Unexpected[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const u of unexpected) {
    const reason = `${u.operation}: ${u.reason.replace(/\d{4}-\d{2}-\d{2}/g, 'D').replace(/\d+/g, 'N')}`
    counts[reason] = (counts[reason] ?? 0) + 1
  }
  return counts
}

const counts = (record: Record<string, number>): string => Object.entries(record).map(([s, n]) => `${s} ${n}`).join(', ')

/** The summary the command line prints: what was sent, what came back, and the first leaks and surprises. */
export function formatSummary (result: IsolationResult): string {
  const seconds = result.durationMs / 1000
  const statuses = Object.entries(result.byStatus).sort(([a], [b]) => Number(a) - Number(b)).map(([s, n]) => `${s}: ${n}`).join(', ')
  const lines = [
    '',
    `Requests:    ${result.requests} in ${seconds.toFixed(1)} s (${Math.round(result.requests / Math.max(seconds, 0.001))} req/s)` +
      `, plus ${result.seedRequests} to seed and ${result.sweepRequests} to read back`,
    `Statuses:    ${statuses}`,
    `Operations:  ${counts(result.byOperation)}`,
    `Tokens:      ${counts(result.byTokenShape)}`,
    `Writes:      ${Object.values(result.writesBySchool).reduce((a, b) => a + b, 0)} across ${Object.keys(result.writesBySchool).length} school(s)`,
    `Leaks:       ${result.leaks.length}`,
    `Unexpected:  ${result.unexpected.length}`
  ]
  const reasons = summarizeReasons(result.unexpected)
  if (Object.keys(reasons).length > 0) lines.push(`  unexpected by reason: ${JSON.stringify(reasons)}`)
  for (const leak of result.leaks.slice(0, 10)) lines.push(`  LEAK ${JSON.stringify(leak)}`)
  for (const u of result.unexpected.slice(0, 10)) lines.push(`  UNEXPECTED ${JSON.stringify(u)}`)
  if (result.leaks.length + result.unexpected.length > 20) lines.push('  …')
  lines.push(result.leaks.length === 0 && result.unexpected.length === 0 ? 'OK: every response belonged to the school it was asked for.' : 'FAILED.')
  return lines.join('\n') + '\n'
}
