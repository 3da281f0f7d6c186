// Run before the suite (npm's pretest), as plain JavaScript so that it
// costs half a second. tap compiles the plugins of its test class ahead of
// time, and a fresh install holds the default set; package.json drops two
// of them (docs/testing.md says which and why). tap notices the difference
// and rebuilds, but only once the run has started with the old set's
// loaders, so every test file of the first run after an install would
// load them all the same, ts-node's among them. Building first when the
// two differ gives that run the start of the next ones. The two modules
// read here are tap's own (its config and its built test class).
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
