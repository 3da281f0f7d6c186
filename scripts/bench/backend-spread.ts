import pg from 'pg'
import { runConcurrently } from '../../src/fleet/concurrency.js'

export interface SpreadRun {
  backends: number
  databases: number
  /** Week queries a second, one figure per round. */
  perSecond: number[]
  /** `SELECT 1` a second, one figure per round: the same spread with no work in the query. */
  emptyPerSecond: number[]
}

// The statement the service runs for GET /api/lunch-weeks/1 (see
// src/lunch/repository.ts), written out so PostgreSQL sees the same work.
const WEEK_QUERY = `SELECT w.*, coalesce(json_agg(json_build_object('id', d.id::text, 'day', d.day, 'menu_details', d.menu_details) ORDER BY d.day)
  FILTER (WHERE d.id IS NOT NULL), '[]') AS days
  FROM lunch_week AS w LEFT JOIN lunch_day AS d ON d.lunch_week_id = w.id WHERE w.id = 1 GROUP BY w.id`

/**
 * PostgreSQL alone, no service: the week query with `inFlight` queries in
 * flight, over a few backends of one school, over 1,000 backends of that one
 * school and over a backend in each of 1,000 schools. It tells what the
 * service adds to E's first curve from what PostgreSQL's process per
 * connection costs when the same work is spread over many backends.
 * `SELECT 1` beside it tells the cost of waking a backend from the cost of
 * the statement. The sets are measured in the order ABC CBA, so neither
 * end gains from coming later.
 */
export async function backendSpread (schoolUrl: (n: number) => string, schools: number, inFlight: number, seconds: number): Promise<SpreadRun[]> {
  const many = Math.min(1000, schools)
  const sets = [
    { backends: inFlight, databases: 1, urls: Array.from({ length: inFlight }, () => schoolUrl(1)) },
    { backends: many, databases: 1, urls: Array.from({ length: many }, () => schoolUrl(1)) },
    { backends: many, databases: many, urls: Array.from({ length: many }, (_, i) => schoolUrl(i + 1)) }
  ]
  const runs: SpreadRun[] = sets.map((set) => ({ backends: set.backends, databases: set.databases, perSecond: [], emptyPerSecond: [] }))
  for (const index of [0, 1, 2, 2, 1, 0]) {
    const set = sets[index]
    const run = runs[index]
    if (set === undefined || run === undefined) continue
    const clients = await openAll(set.urls)
    try {
      run.perSecond.push(await queryRate(clients, WEEK_QUERY, inFlight, seconds))
      run.emptyPerSecond.push(await queryRate(clients, 'SELECT 1', inFlight, seconds))
    } finally {
      await Promise.all(clients.map(async (client) => { await client.end() }))
    }
  }
  return runs
}

/** Opens (and warms, with one query) a connection per url, a few at a time. */
async function openAll (urls: string[]): Promise<pg.Client[]> {
  const clients: pg.Client[] = []
  let failure: unknown = null
  // Every task runs to its end, so that on a failure no connection is left open.
  await runConcurrently(urls, 8, async (url) => {
    if (failure !== null) return
    const client = new pg.Client({ connectionString: url, application_name: 'school-lunch:bench-spread' })
    clients.push(client)
    try {
      await client.connect()
      await client.query(WEEK_QUERY)
    } catch (error) {
      failure ??= error
    }
  })
  if (failure !== null) {
    await Promise.all(clients.map(async (client) => { await client.end().catch(() => {}) }))
    throw failure
  }
  return clients
}

/**
 * Each of the `inFlight` workers owns every inFlight-th client and takes
 * them in turn, so with many clients no backend serves two queries in a row.
 */
async function queryRate (clients: pg.Client[], sql: string, inFlight: number, seconds: number): Promise<number> {
  let done = 0
  const deadline = Date.now() + seconds * 1000
  await Promise.all(Array.from({ length: inFlight }, async (_, worker) => {
    const mine = clients.filter((_, i) => i % inFlight === worker)
    for (let turn = 0; Date.now() < deadline; turn++) {
      const client = mine[turn % mine.length]
      if (client === undefined) return
      await client.query(sql)
      done++
    }
  }))
  return done / seconds
}
