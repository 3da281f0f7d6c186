import type { Scenario } from '../scenario.js'
import { overhead } from './a-overhead.js'
import { scale } from './b-scale.js'
import { migrate } from './c-migrate.js'
import { onboarding } from './d-onboarding.js'
import { growth } from './e-growth.js'
import { anonymous } from './f-anonymous-scan.js'
import { scaleOut } from './g-scale-out.js'
import { apiAtScale } from './h-api-at-scale.js'

/**
 * In the order they run: C and D add schools and databases, so they come
 * after the load scenarios. A new scenario is a new file, listed here.
 */
export const scenarios: Scenario[] = [overhead, scale, growth, anonymous, scaleOut, apiAtScale, migrate, onboarding]

export const scenarioNames = scenarios.map((s) => s.name).sort()
