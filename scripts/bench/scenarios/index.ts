import type { Bench } from '../context.js'
import { overhead } from './a-overhead.js'
import { scale } from './b-scale.js'
import { migrate } from './c-migrate.js'
import { onboarding } from './d-onboarding.js'
import { growth } from './e-growth.js'
import { anonymous } from './f-anonymous-scan.js'
import { scaleOut } from './g-scale-out.js'
import { apiAtScale } from './h-api-at-scale.js'

/** One scenario of the bench: prints its own tables and returns its raw results. */
export interface Scenario {
  /** The letter of --scenarios. */
  name: string
  /** Runs on the whole --schools fleet (the others make do with 50 schools). */
  needsFleet: boolean
  /** The section heading; it may name sizes of this run. */
  heading: (bench: Bench) => string
  run: (bench: Bench) => Promise<Record<string, unknown>>
}

/**
 * In the order they run: C and D add schools and databases, so they come
 * after the load scenarios. A new scenario is a new file, listed here.
 */
export const scenarios: Scenario[] = [overhead, scale, growth, anonymous, scaleOut, apiAtScale, migrate, onboarding]

export const scenarioNames = scenarios.map((s) => s.name).sort()
