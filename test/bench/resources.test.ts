import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { fileSystemNote, inodeWindowLeft, removeInBackground } from '../../scripts/bench/database-server.js'
import type { BenchOptions } from '../../scripts/bench/options.js'
import { fileSystemOf } from '../../scripts/bench/disk.js'
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
  t.match(line, /^Refusing to start: this run needs about 41\.8 GB of disk for \.data\/bench-postgres, and only 30\.0 GB is free there/)
  t.notMatch(line, /\n/)
})

t.test('the bench says when the file system is still paying for an earlier run\'s removal', async (t) => {
  t.match(fileSystemNote(2, null), /^An earlier run's data is still being removed \(2 folder\(s\)\)\. ext4 without a journal .*: C's creation times suffer meanwhile\.$/)
  t.match(fileSystemNote(0, 42.4), /^An earlier run's data was removed 42 s ago\. ext4 without a journal creates files slowly for up to 300 s after many were deleted .*: C's creation times may suffer until then\.$/)
  t.equal(fileSystemNote(0, 300), null, 'not once the window has passed')
  t.equal(fileSystemNote(0, null), null, 'nor when nothing was ever removed')
})

t.test('before C, the bench waits out that window', async (t) => {
  t.equal(inodeWindowLeft(1, 400), null, 'a removal still running: its end is not known yet')
  t.equal(inodeWindowLeft(0, 42), 258, 'removed 42 s ago: 258 s to go')
  t.equal(inodeWindowLeft(0, 301), 0, 'passed')
  t.equal(inodeWindowLeft(0, null), 0, 'nothing was ever removed')
})

t.test('the bench names the file system its servers write to', async (t) => {
  t.match(fileSystemOf(t.testdir({})), /^(ext4|XFS|Btrfs|tmpfs|overlayfs|a file system of type 0x[0-9a-f]+)$/)
  // Linux's shared memory folder, where there is one: tmpfs by its magic number.
  if (fs.existsSync('/dev/shm') && fs.statfsSync('/dev/shm').type === 0x01021994) t.equal(fileSystemOf('/dev/shm'), 'tmpfs')
  const parent = t.testdir({})
  const missing = path.join(parent, 'not', 'yet')
  t.equal(fileSystemOf(missing), fileSystemOf(parent), 'a folder not made yet is on the file system of its nearest existing parent')
  t.notOk(fs.existsSync(path.dirname(missing)), 'and asking makes nothing')
})

t.test('the detached remover deletes the folder and then marks when it finished', async (t) => {
  const parent = t.testdir({ bench: { base: { 1: { 'a-file': 'x' } } } })
  const saved = process.env.BENCH_PG_DIR
  process.env.BENCH_PG_DIR = path.join(parent, 'bench')
  t.teardown(() => { if (saved === undefined) delete process.env.BENCH_PG_DIR; else process.env.BENCH_PG_DIR = saved })
  const before = Date.now()
  removeInBackground(path.join(parent, 'bench'))
  t.notOk(fs.existsSync(path.join(parent, 'bench')), 'renamed away at once')
  const marker = path.join(parent, 'bench.removed')
  // The remover is a detached process of its own: its marker is all there is to wait for.
  const deadline = Date.now() + 30_000
  while (!fs.existsSync(marker) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(fs.existsSync(marker), 'the marker is written')
  t.same(fs.readdirSync(parent).filter((name) => name.includes('.removing-')), [], 'after the renamed folder is gone')
  t.ok(fs.statSync(marker).mtimeMs >= before - 1000, 'and dates from this removal')
})
