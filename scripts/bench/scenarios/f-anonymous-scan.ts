import { anonymousScan } from '../anonymous-scan.js'
import { say } from '../report.js'
import type { Scenario } from './index.js'

/** F: an anonymous scan of every school's public page against a working school; Monday morning. */
export const anonymous: Scenario = {
  name: 'F',
  needsFleet: true,
  heading: () => "F. Anonymous scan: staff load on one school while every school's public page is scanned at 100 req/s; Monday morning",
  async run (bench) {
    const result = await anonymousScan({
      serverUrl: bench.serverUrl,
      catalogUrl: bench.mainCatalog,
      prefix: bench.options.prefix,
      schools: bench.fleetSize,
      env: (extra) => bench.envFor(bench.mainCatalog, extra),
      token: bench.tokenFor,
      durationSeconds: bench.options.duration,
      connections: bench.options.connections,
      rounds: bench.options.rounds,
      say,
      track: bench.track
    })
    return { ...result }
  }
}
