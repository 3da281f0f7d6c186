import os from 'node:os'
import { formatTable } from '../../../src/fleet/table.js'
import { growthChart, type GrowthPoint } from '../chart.js'
import { BUDGET } from '../context.js'
import { WEEK_PATH } from '../measure.js'
import { fmt, say, writeResult } from '../report.js'
import type { Scenario } from './index.js'

/** E: req/s and p99 as the number of active schools grows, on B's budget; drawn as growth.svg. */
export const growth: Scenario = {
  name: 'E',
  needsFleet: true,
  heading: () => 'E. Growth: req/s and p99 as active schools grow, same connection budget',
  async run (bench) {
    const service = await bench.startService({ TENANT_POOLS_MAX: String(BUDGET.poolsMax), TENANT_POOL_SIZE: String(BUDGET.poolSize) })
    const points: GrowthPoint[] = []
    const openedPerSecond: number[] = []
    const sizes = [1, 10, 100, 1000].filter((n) => n <= bench.fleetSize)
    if (!sizes.includes(bench.fleetSize) && bench.fleetSize < 1000) sizes.push(bench.fleetSize)
    for (const active of sizes) {
      let turn = 0
      const result = await bench.measure(service.url, () => ({ path: WEEK_PATH, headers: { authorization: `Bearer ${bench.tokenFor(bench.slug((turn++ % active) + 1))}` } }),
        { service: true, settle: active <= BUDGET.poolsMax })
      points.push({ schools: active, rps: Math.round(result.rps), p99: result.p99 })
      openedPerSecond.push((result.opened ?? 0) / bench.options.duration)
    }
    await service.stop()
    say(formatTable(['active schools', 'req/s', 'p99 ms', 'vs 1 school', 'new conns/s'], points.map((p, i) => [
      String(p.schools), fmt(p.rps), String(p.p99), ((p.rps / (points[0]?.rps ?? 1))).toFixed(2), fmt(openedPerSecond[i] ?? 0, 1)
    ])))
    const caption = `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${new Date().toISOString().slice(0, 10)}; ` +
      `pools ${BUDGET.poolsMax} x ${BUDGET.poolSize}; round-robin over the active schools`
    writeResult('growth.svg', growthChart(points, caption))
    return { points, openedPerSecond }
  }
}
