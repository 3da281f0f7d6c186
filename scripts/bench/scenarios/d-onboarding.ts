import type { Knex } from 'knex'
import { openCatalog } from '../../../src/catalog/catalog.js'
import { formatTable } from '../../../src/fleet/table.js'
import type { Bench } from '../context.js'
import { runMigrate } from '../fleet.js'
import { fmt, median, say } from '../report.js'
import type { Scenario } from '../scenario.js'

interface Timing { slug: string, template: boolean, ms: number }

/** D: from INSERT into the catalog to the school's first 200, with and without the template. */
export const onboarding: Scenario = {
  name: 'D',
  needsFleet: false,
  heading: () => 'D. Onboarding: INSERT into the catalog → npm run migrate --school → first successful request',
  async run (bench) {
    const service = await bench.startService()
    const catalog = openCatalog(bench.mainCatalog, 1)
    const timings: Timing[] = []
    try {
      for (const [i, template] of [[1, true], [2, true], [3, true], [4, false], [5, false], [6, false]] as const) {
        timings.push(await onboard(bench, catalog, service.url, i, template))
      }
    } finally {
      await catalog.destroy()
    }
    await service.stop()
    const msOf = (template: boolean): number[] => timings.filter((t) => t.template === template).map((t) => t.ms)
    const withTemplate = median(msOf(true))
    const without = median(msOf(false))
    say(formatTable(['path', 'median ms (3 schools)', 'all'], [
      ['template', fmt(withTemplate), msOf(true).join(', ')],
      ['no template', fmt(without), msOf(false).join(', ')]
    ]))
    say('Most of it is starting `npm run migrate` (Node + tsx); the running API then answers the new school at once.')
    return { timings, medianTemplateMs: withTemplate, medianPlainMs: without }
  }
}

async function onboard (bench: Bench, catalog: Knex, serviceUrl: string, i: number, template: boolean): Promise<Timing> {
  const { prefix } = bench.options
  const slug = `${prefix}-new-${i}`
  const started = Date.now()
  await catalog('schools').insert({ slug, name: `New school ${i}`, database_name: `${prefix}_new_${i}` })
  const migrated = await runMigrate(bench.envFor(bench.mainCatalog), ['--school', slug, ...(template ? [] : ['--no-template'])])
  if (migrated.code !== 0) throw new Error(`onboarding migrate failed: ${migrated.summary}`)
  while (true) {
    const res = await fetch(`${serviceUrl}/api/lunch-weeks`, { headers: { authorization: `Bearer ${bench.tokenFor(slug)}` } })
    if (res.status === 200) break
    if (Date.now() - started > 60_000) throw new Error(`school ${slug} never answered (${res.status})`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return { slug, template, ms: Date.now() - started }
}
