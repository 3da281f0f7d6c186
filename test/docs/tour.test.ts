// The README's tour, run as a newcomer runs it: its `sh` blocks in order,
// in one bash session, against the real server on a cluster of this file's
// own (the tour's school names and databases are the real ones, so they
// cannot share the suite's server). Each `text` block right after an `sh`
// block is the output the tour promises: it must match, `…` standing for
// anything.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { projectRoot } from '../../src/config.js'
import { databaseUrl } from '../../src/postgres/connection.js'
import { withDatabase } from '../helpers/databases.js'
import { fencedBlocks, section } from '../helpers/markdown.js'
import { privateCluster } from '../helpers/private-cluster.js'
import { startServerProcess } from '../helpers/run.js'

const TOUR_HEADING = 'A five-minute tour'
const MENU = 'Vegetable lasagne, green salad, apple'

interface Step {
  script: string
  /** The output the tour shows for this block, and its line in README.md. */
  expected: { text: string, line: number } | null
}

/** The tour's `sh` blocks, each with the `text` block that follows it, if any. */
function tourSteps (readme: string): Step[] {
  const tour = section(readme, TOUR_HEADING)
  if (tour === null) throw new Error(`README.md has no "## ${TOUR_HEADING}" heading`)
  const blocks = fencedBlocks(tour.body)
  const lines = tour.body.split('\n')
  return blocks.flatMap((block, i) => {
    if (block.info !== 'sh') return []
    const next = blocks[i + 1]
    const shown = next?.info === 'text' && lines.slice(block.end, next.line - 1).join('').trim() === ''
    return [{ script: block.body, expected: shown ? { text: next.body, line: tour.line + next.line - 1 } : null }]
  })
}

/** Runs the steps in one bash, each step's output apart; rejects after `timeoutMs`. */
async function runSteps (steps: Step[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null, outputs: string[], stderr: string }> {
  const script = ['set -euo pipefail', ...steps.flatMap((step, i) => [`echo '@@step ${i}'`, step.script])].join('\n')
  const child = spawn('bash', ['--noprofile', '--norc', '-c', script], { cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`the tour did not finish within ${timeoutMs} ms:\n${stdout}\n${stderr}`)) }, timeoutMs)
    child.on('error', reject)
    child.on('close', (exit) => { clearTimeout(timer); resolve(exit) })
  })
  const outputs = stdout.split(/^@@step \d+\n/m).slice(1)
  return { code, outputs, stderr }
}

/** The promised output as a pattern: literal text, `…` for any run of characters. */
function promised (expected: string): RegExp {
  const literal = expected.trim().split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${literal.join('[\\s\\S]*?')}$`)
}

const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8')
const steps = tourSteps(readme)

t.test('the README tour runs as written and shows what it promises', async (t) => {
  t.ok(steps.length >= 6, `the tour has its steps (${steps.length} sh blocks)`)
  t.ok(steps.filter((step) => step.expected !== null).length >= 5, 'and shows what most of them print')
  const serverUrl = await privateCluster(t, 'test-docs-tour', 11)
  const catalogUrl = databaseUrl(serverUrl, 'catalog')
  const server = await startServerProcess({ DATABASE_URL: catalogUrl }, { from: 'tsx' })
  t.teardown(server.stop)

  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATABASE_URL: catalogUrl, ENV_FILE: '/dev/null', API: server.address }
  const { code, outputs, stderr } = await runSteps(steps, env, 150_000)
  t.equal(code, 0, 'every block ran without error', { stderr })
  t.equal(outputs.length, steps.length, 'every block ran')

  steps.forEach((step, i) => {
    if (step.expected === null) return
    t.match(outputs[i]?.trim(), promised(step.expected.text), `README.md line ${step.expected.line}: the output shown is the output printed`)
  })
  const all = outputs.join('')
  t.match(all, new RegExp(`"menuDetails":"${MENU}"[^\\n]*\\nHTTP 200\\n`), 'the published week reads back for Pinewood, with no token')
  t.match(all, /"code":"LUNCH_WEEK_NOT_FOUND"[^\n]*\nHTTP 404\n/, "Oakridge's token does not reach Pinewood's week")
  t.match(all, /"code":"PUBLISHED_WEEK_NOT_FOUND"[^\n]*\nHTTP 404\n/, "Oakridge's public page has no such week")

  const database = async (slug: string): Promise<string> => await withDatabase(serverUrl, 'catalog', async (db) =>
    (await db('schools').where({ slug }).first('database_name') as { database_name: string }).database_name)
  const published = await withDatabase(serverUrl, await database('pinewood'), async (db) =>
    await db('lunch_week').join('lunch_day', 'lunch_day.lunch_week_id', 'lunch_week.id')
      .where({ is_published: true }).select<Array<{ week_of: string, menu_details: string }>>('week_of', 'menu_details'))
  t.ok(published.some((row) => row.menu_details === MENU), "Pinewood's database holds the published week with Monday's menu")
  const weekOf = published[0]?.week_of
  const oakridge = await withDatabase(serverUrl, await database('oakridge'), async (db) =>
    await db('lunch_week').where({ week_of: weekOf ?? '' }).orWhere({ is_published: true }).count<Array<{ n: string }>>({ n: '*' }))
  t.equal(Number(oakridge[0]?.n), 0, "Oakridge's database has neither that week nor any published one")
})
