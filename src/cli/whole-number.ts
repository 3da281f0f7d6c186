/**
 * A whole number from `min` to `max` written in decimal digits (a leading
 * minus allowed), or null: `1e3`, `0x10`, `1.0` and blanks are refused
 * rather than read as numbers, as Number() would.
 */
export function parseWholeNumber (raw: string, min: number, max: number): number | null {
  if (!/^-?\d+$/.test(raw)) return null
  const value = Number(raw)
  return value < min || value > max ? null : value
}

/** The message for a value that parseWholeNumber refused, naming where it came from. */
export function wholeNumberProblem (name: string, raw: string, min: number, max: number): string {
  return `${name} must be a whole number from ${min} to ${max} (got "${raw}")`
}
