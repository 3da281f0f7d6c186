import t from 'tap'
import { prepareCatalog } from '../../src/catalog/catalog.js'
import { BudgetTooLarge, checkBudgets, decideBudget, readServerLimits } from '../../src/tenancy/connection-budget.js'
import { testDatabases } from '../helpers/databases.js'
import { runScript, startServerProcess } from '../helpers/run.js'

const stock = { maxConnections: 100, superuserReserved: 3, reserved: 0 }
const shares = { catalog: 6, migrate: 12 }

t.test('a budget that is set must fit the server; one that is not is worked out from it', async (t) => {
  t.match(decideBudget('default', null, { maxConnections: 1300, superuserReserved: 3, reserved: 0 }, shares), { budget: 100 },
    'unset on a large server: 100')
  t.match(decideBudget('default', null, stock, shares), { budget: 79, explanation: /max_connections 100 - superuser_reserved_connections 3 = 97, less 6 for the catalog and 12 for migrate: 79/ },
    'unset on a stock server: what it leaves, so a first start never fails')
  t.match(decideBudget('default', 97, stock, shares), { budget: 97 }, 'set: the whole allowance is allowed')
  t.throws(() => decideBudget('east', 98, stock, shares),
    new BudgetTooLarge('TENANT_CONNECTIONS_MAX for server "east" is 98, more than the server allows: max_connections 100 - superuser_reserved_connections 3 = 97'))
  t.throws(() => decideBudget('east', 95, { ...stock, reserved: 5 }, shares), { message: /- reserved_connections 5 = 92$/ },
    "PostgreSQL 16's reserved_connections counts too")
  t.match(decideBudget('east', 40, null, shares), { budget: 40, explanation: /could not be reached/ }, 'an unreachable server keeps its setting')
})

t.test('against a real server: its settings are read, and a budget over them stops the start with one line', async (t) => {
  const dbs = await testDatabases(t, 'budget')
  const limits = await readServerLimits(dbs.serverUrl)
  const { rows } = await dbs.admin.raw<{ rows: Array<{ max: string }> }>("SELECT current_setting('max_connections') AS max")
  t.equal(limits.maxConnections, Number(rows[0]?.max), 'max_connections as the server reports it')

  const logged: string[] = []
  const log = { info: (_: object, message: string) => { logged.push(message) }, warn: (_: object, message: string) => { logged.push(message) } }
  const budgets = await checkBudgets({
    servers: { default: dbs.serverUrl, gone: 'postgres://postgres:postgres@127.0.0.1:1' },
    setting: { all: null, servers: { gone: 7 } },
    catalogUrl: dbs.catalogUrl,
    catalogPoolSize: 5,
    migrateConcurrency: 8,
    log
  })
  t.same([...budgets], [['default', 100], ['gone', 7]])
  t.match(logged, [/could not read the connection limits of tenant server gone/, /^connection budget on default: 100 \(TENANT_CONNECTIONS_MAX unset/, /^connection budget on gone: 7/])

  const tooMany = String(limits.maxConnections + 1)
  const refused = await runScript('src/server.ts', [], { ...dbs.env, TENANT_CONNECTIONS_MAX: tooMany })
  t.equal(refused.code, 1, 'the server refuses to start')
  t.match(refused.stderr, new RegExp(`^Could not start: TENANT_CONNECTIONS_MAX for server "default" is ${tooMany}, more than the server allows: ` +
    `max_connections ${limits.maxConnections} - superuser_reserved_connections ${limits.superuserReserved} = \\d+$`, 'm'))

  await prepareCatalog(dbs.catalogUrl)
  const server = await startServerProcess({ ...dbs.env, TENANT_CONNECTIONS_MAX: '20', SHUTDOWN_DRAIN_MS: '0' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  t.match(server.output(), /connection budget on default: 20 \(TENANT_CONNECTIONS_MAX; the server allows max_connections/, 'a start logs the budget beside the settings')
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0)
})
