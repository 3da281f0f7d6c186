import t from 'tap'
import type { BenchOptions } from '../../scripts/bench/options.js'
import { diskRefusal, estimateNeeds, SCHOOL_DATABASE_MB } from '../../scripts/bench/resources.js'

const options = (scenarios: string[], servers: number, schools: number): BenchOptions =>
  ({ scenarios: new Set(scenarios), schools, servers, duration: 8, connections: 10, rounds: 3, prefix: 'bench', quick: false })

t.test('the disk a run needs counts every school database it creates', async (t) => {
  const spread = estimateNeeds(options(['C', 'H'], 4, 5000), 5000)
  t.equal(spread.databases, 5000 + 300 + 200, 'the fleet, C\'s three fleets of 100 and its bare CREATE DATABASEs; no second fleet on several servers')
  t.equal(spread.diskMB, 5500 * SCHOOL_DATABASE_MB + 4 * 1_100, 'and each server\'s WAL')
  t.match(spread.parts[1], /1,000 warm school backends/, 'H keeps 1,000 schools warm')
  const single = estimateNeeds(options(['C'], 1, 1000), 1000)
  t.equal(single.databases, 1000 + 300 + 200 + 1000, 'on one server C creates the fleet a second time, without the template')
  t.equal(estimateNeeds(options(['A'], 1, 1000), 50).databases, 50, 'a scenario without the whole fleet gets 50 schools')
  const scaleOut = estimateNeeds(options(['G'], 1, 1000), 1000)
  t.match(scaleOut.parts[1], /3,000 warm school backends × 1\.9 MB \+ 3 API processes × 250 MB = 6\.7 GB$/, 'G: round-robin warms every school in each of three processes')
})

t.test('a run the disk cannot hold is refused with one line naming both sizes', async (t) => {
  const needs = estimateNeeds(options(['C'], 4, 5000), 5000)
  t.equal(diskRefusal(needs, needs.diskMB + 1, '.data/bench-postgres'), null)
  const line = diskRefusal(needs, 30_000, '.data/bench-postgres')
  t.match(line, /^Refusing to start: this run needs about 46\.8 GB of disk for \.data\/bench-postgres, and only 30\.0 GB is free there/)
  t.notMatch(line, /\n/)
})
