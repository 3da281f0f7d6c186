import t from 'tap'
import { testApp } from '../helpers/app.js'
import { runScript } from '../helpers/run.js'

t.test('npm run token prints a token the API accepts', async (t) => {
  const { app } = await testApp(t, 'tokscript', { schools: ['pinewood', 'oakridge'] })

  const single = await runScript('scripts/token.ts', ['--school', 'pinewood', '--sub', 'ms-lee'], { NODE_ENV: 'development' })
  t.equal(single.code, 0, single.stderr)
  t.match(single.stderr, /development secret/, 'says which secret signed it')
  const me = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${single.stdout.trim()}` } })
  t.equal(me.statusCode, 200)
  t.same(me.json(), { subject: 'ms-lee', school: { slug: 'pinewood', name: 'School pinewood' }, schools: ['pinewood'] })

  const multi = await runScript('scripts/token.ts', ['--schools', 'pinewood,oakridge'], { NODE_ENV: 'development' })
  t.equal(multi.code, 0, multi.stderr)
  const both = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${multi.stdout.trim()}`, 'x-school': 'oakridge' } })
  t.equal(both.statusCode, 200)
  t.match(both.json(), { school: { slug: 'oakridge' }, schools: ['pinewood', 'oakridge'] })
})

t.test('npm run token refuses bad input with usage', async (t) => {
  for (const args of [[], ['--school', 'Not A Slug'], ['--school', 'a', '--expires-in', 'forever'], ['--bogus']]) {
    const result = await runScript('scripts/token.ts', args, { NODE_ENV: 'development' })
    t.equal(result.code, 2, args.join(' '))
    t.match(result.stderr, /Usage: npm run token/)
    t.equal(result.stdout, '', 'no token printed')
  }
  const rs = await runScript('scripts/token.ts', ['--school', 'a'], { NODE_ENV: 'development', JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' })
  t.equal(rs.code, 2)
  t.match(rs.stderr, /identity provider/)
})
