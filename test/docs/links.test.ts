// Every relative link of README.md and docs/*.md leads somewhere: to a file
// of the repository and, with an #anchor, to a heading of that file, by
// GitHub's anchor rules.
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { projectRoot } from '../../src/config.js'
import { anchors, links, slug } from '../helpers/markdown.js'

// docs/configuration.md is generated from src/config.ts by
// `npm run docs:config` (the docs-config branch). Until that branch is
// merged here it may be missing: links to it are accepted then, and to no
// other missing file. Once it exists, its links and anchors are checked too.
const GENERATED = new Set(['docs/configuration.md'])

const docsDir = path.join(projectRoot, 'docs')
const documents = ['README.md', ...fs.readdirSync(docsDir).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)]

function isRelative (target: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('//')
}

/** Where a link points, as a path from the project root and an anchor, or null for none. */
function resolveLink (from: string, target: string): { file: string, anchor: string | null } {
  const [rawPath = '', anchor] = target.split('#', 2)
  const file = rawPath === '' ? from : path.posix.normalize(path.posix.join(path.posix.dirname(from), decodeURI(rawPath)))
  return { file, anchor: anchor === undefined ? null : decodeURIComponent(anchor) }
}

const anchorsOf = new Map<string, Set<string>>()
function fileAnchors (file: string): Set<string> {
  let found = anchorsOf.get(file)
  if (found === undefined) {
    found = anchors(fs.readFileSync(path.join(projectRoot, file), 'utf8'))
    anchorsOf.set(file, found)
  }
  return found
}

t.test('GitHub anchors, as the check computes them', async (t) => {
  t.equal(slug('Shutdown: drain, then close'), 'shutdown-drain-then-close')
  t.equal(slug('`npm run migrate`'), 'npm-run-migrate')
  t.equal(slug('5,000 schools on four servers'), '5000-schools-on-four-servers')
  t.equal(slug("Seeds: a new school's starting data"), 'seeds-a-new-schools-starting-data')
  t.equal(slug('Ids, `/docs`, CORS and caching'), 'ids-docs-cors-and-caching')
  t.equal(slug('G. Scale-out'), 'g-scale-out')
  t.same([...anchors('# A\n\n## Tests\n\n```sh\n# not a heading\n```\n\n## Tests\n')], ['a', 'tests', 'tests-1'], 'a repeated heading gets -1; a comment in a fence is no heading')
})

t.test('every relative link of the docs points to a file and a heading that exist', async (t) => {
  t.ok(documents.length > 1, `README.md and docs/*.md: ${documents.join(', ')}`)
  const problems: string[] = []
  let checked = 0
  for (const document of documents) {
    for (const link of links(fs.readFileSync(path.join(projectRoot, document), 'utf8'))) {
      if (!isRelative(link.target)) continue
      checked++
      const where = `${document}:${link.line} → ${link.target}`
      const { file, anchor } = resolveLink(document, link.target)
      if (!fs.existsSync(path.join(projectRoot, file))) {
        if (!(GENERATED.has(file) && anchor === null)) problems.push(`${where}: no file ${file}`)
        continue
      }
      if (anchor === null) continue
      if (!file.endsWith('.md')) problems.push(`${where}: an anchor into a file that is not Markdown`)
      else if (!fileAnchors(file).has(anchor)) problems.push(`${where}: ${file} has no heading #${anchor}`)
    }
  }
  t.ok(checked > 50, `${checked} relative links checked`)
  t.same(problems, [], 'no link is broken')
})
