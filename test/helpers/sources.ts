import fs from 'node:fs'
import path from 'node:path'

/** Every .ts file under `dir` (absolute paths), node_modules and .d.ts files aside. */
export function typeScriptFiles (dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .filter((file) => !file.split(path.sep).includes('node_modules'))
    .sort()
}

// A statement that starts a line: import … from '…', export … from '…', or
// import '…' for its side effects; and import('…') with a literal path.
const STATIC_IMPORT = /^(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]/gm
const DYNAMIC_IMPORT = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g

/**
 * The project files `file` imports, type-only imports included (a type
 * import back is what ties two modules together for a reader).
 */
export function relativeImports (file: string): string[] {
  const source = fs.readFileSync(file, 'utf8')
  const specifiers = [...source.matchAll(STATIC_IMPORT), ...source.matchAll(DYNAMIC_IMPORT)]
    .map((match) => match[1] ?? match[2] ?? '')
    .filter((specifier) => specifier.startsWith('.'))
  return specifiers.map((specifier) => resolveSpecifier(file, specifier)).filter((target): target is string => target !== null)
}

function resolveSpecifier (from: string, specifier: string): string | null {
  const base = path.resolve(path.dirname(from), specifier)
  const candidates = [base.replace(/\.js$/, '.ts'), `${base}.ts`, path.join(base, 'index.ts')]
  return candidates.find((candidate) => fs.existsSync(candidate) && fs.statSync(candidate).isFile()) ?? null
}

/** The variables `source` reads from process.env by name, with a dot or in brackets. */
export function environmentReads (source: string): string[] {
  return [...source.matchAll(/process\.env(?:\.([A-Za-z_]\w*)|\[\s*['"]([^'"]+)['"]\s*\])/g)].map((match) => match[1] ?? match[2] ?? '')
}
