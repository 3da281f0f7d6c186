import fs from 'node:fs'
import path from 'node:path'
import { transform } from 'esbuild'
import { projectRoot } from '../../src/config.js'
import { testCluster } from './cluster.js'

/*
 * The commands and servers tests start run from a plain-JS copy of src/,
 * scripts/, database/ and test/helpers/, written once by the suite's
 * before-script. Under tsx every Node process pays its loader, about 1.5 s
 * of CPU more than the same code compiled, and the suite starts some 150 of
 * them. tsx is still tested: every test file runs under it, and so do the
 * server and the npm commands of the README tour (test/docs/tour.test.ts);
 * test/build.test.ts checks the compiled output of `npm run build` against
 * the TypeScript.
 */

// The bench's scenario A borrows the test JWKS server from test/helpers.
const SOURCES = ['src', 'scripts', 'database', 'test/helpers']

/**
 * Named after the suite's cluster, so that two suites with their own
 * clusters have their own copies; inside the checkout wherever the
 * cluster is (TEST_PG_DIR), so that the copy finds node_modules.
 */
export const compiledDir = path.join(projectRoot, '.data', `${path.basename(testCluster.dataDir)}-js`)

/**
 * Transpiles every .ts file of SOURCES, with tsconfig.json's options, into
 * a fresh folder that then replaces compiledDir, so a file deleted from the
 * sources leaves nothing behind (an old migration would otherwise run).
 */
export async function writeCompiledCopy (): Promise<void> {
  const tsconfigRaw = fs.readFileSync(path.join(projectRoot, 'tsconfig.json'), 'utf8')
  const fresh = `${compiledDir}.${process.pid}`
  fs.rmSync(fresh, { recursive: true, force: true })
  const files = SOURCES.flatMap((dir) => fs.readdirSync(path.join(projectRoot, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => path.join(dir, file)))
  await Promise.all(files.map(async (file) => {
    const { code } = await transform(fs.readFileSync(path.join(projectRoot, file), 'utf8'), {
      loader: 'ts', format: 'esm', target: 'node20', sourcefile: file, tsconfigRaw
    })
    const target = path.join(fresh, file.replace(/\.ts$/, '.js'))
    fs.mkdirSync(path.dirname(target), { recursive: true })
    fs.writeFileSync(target, code)
  }))
  fs.rmSync(compiledDir, { recursive: true, force: true })
  fs.renameSync(fresh, compiledDir)
}

/**
 * The compiled copy of a project script (`scripts/schools.ts` →
 * `<compiledDir>/scripts/schools.js`), relative to the project root as
 * spawnTsx takes it; it runs under plain node.
 */
export function compiled (script: string): string {
  if (!script.endsWith('.ts')) return script
  const target = path.join(compiledDir, script.replace(/\.ts$/, '.js'))
  if (!fs.existsSync(target)) throw new Error(`${path.relative(projectRoot, target)} is missing: the suite's before-script (test/setup/start-postgres.ts) writes it`)
  return path.relative(projectRoot, target)
}
