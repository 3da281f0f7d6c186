// Run before the suite (npm's pretest), as plain JavaScript so that it
// costs half a second. tap compiles the plugins of its test class ahead of
// time. A fresh install holds the default set, @tapjs/typescript among
// them; package.json drops that one, since tsx runs our TypeScript. tap
// notices the difference and rebuilds, but only once the run has started
// with the old set's loaders: every test file of that first run also loads
// ts-node's, which cost the suite about 216 s of CPU (docs/testing.md).
// Building first when the two differ gives the first run the same start as
// the next ones.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { TapConfig } from '@tapjs/config'
import { signature } from '@tapjs/test'

const config = await TapConfig.load()
if (config.pluginSignature !== signature) {
  console.log("Building tap's runner for the plugins package.json names (once after an install)")
  const tapRoot = dirname(createRequire(import.meta.url).resolve('tap/package.json'))
  const build = spawnSync(process.execPath, [join(tapRoot, 'dist/esm/run.mjs'), 'build'], { stdio: 'inherit' })
  if (build.status !== 0) {
    console.error(`tap build failed (${build.signal ?? `exit code ${build.status}`})`)
    process.exit(1)
  }
}
