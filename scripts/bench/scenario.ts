import type { Bench } from './context.js'

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
