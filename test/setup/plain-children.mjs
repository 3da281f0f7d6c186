// Loaded into every test file's process (tap's node-arg), after tap's own
// loaders. tap's processinfo adds its loader to the NODE_OPTIONS of every
// process a test spawns, to follow the process tree for coverage and for
// `tap --changed`. Neither is used here (coverage is off), and the
// children are the commands and servers under test, some 150 a run, each
// of which then loaded every module through that hook as well. Dropping its
// spawn listener starts them as an operator would: plain node, nothing
// injected. docs/testing.md gives the figures.
import processOnSpawn from 'process-on-spawn'

processOnSpawn.removeAllListeners()
