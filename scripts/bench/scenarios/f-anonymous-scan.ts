import { anonymousScan } from '../anonymous-scan.js'
import type { Scenario } from '../scenario.js'

/** F: an anonymous scan of every school's public page against a working school; Monday morning. */
export const anonymous: Scenario = {
  name: 'F',
  needsFleet: true,
  heading: () => "F. Anonymous scan: staff load on one school while every school's public page is scanned at 100 req/s; Monday morning",
  async run (bench) {
    const result = await anonymousScan(bench)
    return { ...result }
  }
}
