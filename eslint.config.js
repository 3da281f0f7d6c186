import neostandard, { resolveIgnoresFromGitignore } from 'neostandard'

// fastify's own style (standard, TypeScript-aware), as in fastify's demo app.
export default [
  ...neostandard({ ts: true, ignores: resolveIgnoresFromGitignore() }),
  {
    rules: {
      // `void promise` as a statement marks a promise left unawaited on
      // purpose (hooks, signal handlers); void inside an expression stays refused.
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    // Code a newcomer reads as a whole: no function over 80 lines of code
    // and no file over 400 lines (tests excepted, whose tables and
    // scenarios read best in one piece).
    files: ['src/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
      'max-lines': ['error', { max: 400 }]
    }
  },
  {
    // The hostile inputs are a table whose columns are aligned to be read.
    files: ['test/security/hostile-input.test.ts'],
    rules: { '@stylistic/no-multi-spaces': 'off' }
  }
]
