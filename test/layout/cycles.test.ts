import path from 'node:path'
import t from 'tap'
import { projectRoot } from '../../src/config.js'
import { relativeImports, typeScriptFiles } from '../helpers/sources.js'

type Graph = Map<string, string[]>

/** Groups of files that reach each other through their imports (Tarjan's strongly connected components). */
function tiedGroups (graph: Graph): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const groups: string[][] = []
  const visit = (file: string): void => {
    index.set(file, index.size)
    low.set(file, index.get(file) ?? 0)
    stack.push(file)
    onStack.add(file)
    for (const next of graph.get(file) ?? []) {
      if (!index.has(next)) {
        visit(next)
        low.set(file, Math.min(low.get(file) ?? 0, low.get(next) ?? 0))
      } else if (onStack.has(next)) {
        low.set(file, Math.min(low.get(file) ?? 0, index.get(next) ?? 0))
      }
    }
    if (low.get(file) !== index.get(file)) return
    const group: string[] = []
    let member: string | undefined
    do {
      member = stack.pop()
      if (member === undefined) break
      onStack.delete(member)
      group.push(member)
    } while (member !== file)
    if (group.length > 1 || (graph.get(file) ?? []).includes(file)) groups.push(group.sort())
  }
  for (const file of graph.keys()) if (!index.has(file)) visit(file)
  return groups
}

/** The shortest way from a group's first file back to itself: a cycle a reader can follow. */
function cycleThrough (graph: Graph, group: string[]): string[] {
  const start = group[0] ?? ''
  const cameFrom = new Map<string, string>()
  const queue = [start]
  while (queue.length > 0) {
    const file = queue.shift() ?? ''
    for (const next of graph.get(file) ?? []) {
      if (next === start) {
        const cycle = [start]
        for (let at = file; at !== start; at = cameFrom.get(at) ?? start) cycle.splice(1, 0, at)
        return [...cycle, start]
      }
      if (group.includes(next) && !cameFrom.has(next)) {
        cameFrom.set(next, file)
        queue.push(next)
      }
    }
  }
  return group
}

// Types and code flow one way between the modules of src/ and scripts/: a
// module that imports one that imports it back (types included) is two
// halves of one idea, or a type in the wrong home.
t.test('no file of src/ or scripts/ imports itself back, directly or through others', async (t) => {
  const files = ['src', 'scripts'].flatMap((dir) => typeScriptFiles(path.join(projectRoot, dir)))
  const graph: Graph = new Map(files.map((file) => [file, relativeImports(file)]))
  t.ok(files.length > 100 && [...graph.values()].filter((targets) => targets.length > 0).length > 100, 'the imports were read')
  const cycles = tiedGroups(graph).map((group) => cycleThrough(graph, group).map((file) => path.relative(projectRoot, file)).join(' → '))
  t.same(cycles, [], `import cycles:\n${cycles.join('\n')}\nMove the shared types to a module both import, or pass the value in.`)
})
