import { execFileSync } from 'node:child_process'
import t from 'tap'
import { projectRoot } from '../../src/config.js'
import { growthChartName } from '../../scripts/bench/report.js'

// Scenario E itself takes minutes even quick, too long for the suite; what
// keeps a quick run off the tracked chart is the name it writes to, and
// git's view of the two names.
const RESULTS = 'scripts/bench/results'

function git (...args: string[]): string {
  return execFileSync('git', args, { cwd: projectRoot, encoding: 'utf8' })
}

t.test('a quick run of scenario E draws its own chart, ignored by git; a full run draws the tracked one', async (t) => {
  const quick = `${RESULTS}/${growthChartName(true)}`
  const full = `${RESULTS}/${growthChartName(false)}`
  t.not(quick, full, 'two names')
  t.equal(git('ls-files', full).trim(), full, 'the full run\'s chart is the one the docs show, tracked')
  t.equal(git('check-ignore', quick).trim(), quick, 'the quick run\'s chart is ignored, so it is never committed')
  t.equal(git('ls-files', quick).trim(), '', 'and not tracked')
})
