import type { Test } from 'tap'

export interface ErrorBody { statusCode: number, code: string, error: string, message: string }

/**
 * Asserts that a response is the given error: its status, a JSON body in
 * the API's error shape and its stable code (or one of several). Returns the body.
 */
export function assertError (t: Test, res: { statusCode: number, headers: Record<string, unknown>, body: string }, statusCode: number, code: string | string[], what: string): ErrorBody {
  t.equal(res.statusCode, statusCode, `${what}: status ${statusCode}`)
  t.match(res.headers['content-type'], /^application\/json/, `${what}: JSON error body`)
  let body: ErrorBody
  try {
    body = JSON.parse(res.body) as ErrorBody
  } catch {
    t.fail(`${what}: body is not JSON: ${res.body}`)
    return { statusCode: 0, code: '', error: '', message: '' }
  }
  if (Array.isArray(code)) t.ok(code.includes(body.code), `${what}: code ${body.code} is one of ${code.join(', ')}`)
  else t.equal(body.code, code, `${what}: code ${code}`)
  t.match(body, { statusCode, error: String, message: String }, `${what}: the error shape`)
  t.not(body.message, '', `${what}: has a message`)
  return body
}
