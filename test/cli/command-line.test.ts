import t from 'tap'
import { parseCommandLine, parseSubcommand, UsageError, wholeNumberOption, formatUsageError } from '../../src/cli/command-line.js'
import { parseWholeNumber } from '../../src/cli/whole-number.js'

const USAGE = 'Usage: thing [--count N] [--name S] [--flag]'
const options = { count: { type: 'string' }, name: { type: 'string', default: 'x' }, flag: { type: 'boolean', default: false } } as const

t.test('whole numbers: decimal digits within the range, nothing Number() would stretch', async (t) => {
  t.equal(parseWholeNumber('8', 1, 256), 8)
  t.equal(parseWholeNumber('-3', -5, 5), -3)
  for (const raw of ['', ' 8', '8 ', '1e3', '0x10', '1.0', '+8', 'eight', '257', '0']) {
    t.equal(parseWholeNumber(raw, 1, 256), null, JSON.stringify(raw))
  }
})

t.test('a command line is parsed with its types, or refused with the usage', async (t) => {
  const { values } = parseCommandLine({ usage: USAGE, options, args: ['--count', '3', '--flag'] })
  t.same(values, { count: '3', name: 'x', flag: true })
  t.equal(wholeNumberOption(values.count, 'count', { min: 1, max: 5, fallback: 1 }, USAGE), 3)
  t.equal(wholeNumberOption(undefined, 'count', { min: 1, max: 5, fallback: 1 }, USAGE), 1, 'absent: the fallback')

  t.throws(() => parseCommandLine({ usage: USAGE, options, args: ['--bogus'] }), UsageError, 'an unknown option')
  t.throws(() => parseCommandLine({ usage: USAGE, options, args: ['extra'] }), UsageError, 'a positional where none is taken')
  const range = t.throws(() => wholeNumberOption('9', 'count', { min: 1, max: 5, fallback: 1 }, USAGE)) as UsageError
  t.equal(formatUsageError(range), `--count must be a whole number from 1 to 5 (got "9")\n\n${USAGE}\n`)
  t.equal(formatUsageError(new UsageError('no usage here')), 'no usage here\n', 'an error without usage prints only itself')
})

t.test('subcommands: the first argument names one of them', async (t) => {
  t.same(parseSubcommand(USAGE, ['list', 'add'], ['add', 'pine', '--name', 'P']), { name: 'add', args: ['pine', '--name', 'P'] })
  t.throws(() => parseSubcommand(USAGE, ['list', 'add'], []), { message: 'No command given.' })
  t.throws(() => parseSubcommand(USAGE, ['list', 'add'], ['remove']), { message: 'Unknown command "remove".' })
})
