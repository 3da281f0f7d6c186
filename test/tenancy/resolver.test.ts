// The tenant-resolution seam: the school a request acts for can come from
// somewhere else than the claim and X-School, here the host's subdomain,
// without touching the tenancy plugin; the token still bounds the choice.
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { SchoolNotSelected } from '../../src/errors.js'
import { allowedSchools, type Claims, type SchoolChoice } from '../../src/tenancy/token.js'
import { testApp } from '../helpers/app.js'

const names = { schoolClaim: 'school', schoolsClaim: 'schools' }

/** pine.lunch.example → pine: one host name per school, as some SPAs are deployed. */
function bySubdomain (request: FastifyRequest, claims: Claims): SchoolChoice {
  const { allowed } = allowedSchools(claims, names)
  const subdomain = request.hostname.split('.')[0]
  if (subdomain === undefined || subdomain === '') throw new SchoolNotSelected()
  return { slug: subdomain, allowed }
}

t.test('a resolver by subdomain, given to the plugin as an option', async (t) => {
  const { app, token } = await testApp(t, 'resolver', { schools: ['pine', 'oak'], tenancy: { resolveSchool: bySubdomain } })
  const both = { authorization: `Bearer ${token({ sub: 'u1', schools: ['pine', 'oak'] })}` }
  const me = async (host: string, headers: Record<string, string>): Promise<{ status: number, body: { code?: string, school?: { slug: string } } }> => {
    const res = await app.inject({ url: '/api/me', headers: { ...headers, host } })
    return { status: res.statusCode, body: res.json() }
  }

  t.match(await me('pine.lunch.example', both), { status: 200, body: { school: { slug: 'pine' } } }, 'the subdomain picks pine')
  t.match(await me('oak.lunch.example', both), { status: 200, body: { school: { slug: 'oak' } } }, 'and oak')
  t.match(await me('oak.lunch.example', { ...both, 'x-school': 'pine' }), { status: 200, body: { school: { slug: 'oak' } } },
    'X-School is not this rule: the host decides')

  const pineOnly = { authorization: `Bearer ${token({ sub: 'u2', school: 'pine' })}` }
  t.match(await me('oak.lunch.example', pineOnly), { status: 403, body: { code: 'SCHOOL_NOT_ALLOWED' } },
    "a token for pine on oak's host is refused: the plugin checks the resolver's choice against the token")
  t.match(await me('elm.lunch.example', both), { status: 403, body: { code: 'SCHOOL_NOT_ALLOWED' } }, 'so is a school the token does not list')

  const week = await app.inject({ method: 'POST', url: '/api/lunch-weeks', headers: { ...both, host: 'oak.lunch.example' }, payload: { weekOf: '2026-11-23' } })
  t.equal(week.statusCode, 201)
  const pineWeeks = await app.inject({ url: '/api/lunch-weeks', headers: { ...both, host: 'pine.lunch.example' } })
  t.same(pineWeeks.json(), [], "oak's week is in oak's database only")
})
