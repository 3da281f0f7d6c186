import { collectDefaultMetrics, Registry } from 'prom-client'

let processRegistry: Registry | null = null

/**
 * prom-client's process metrics (CPU, memory, heap, event-loop lag, GC,
 * handles), in a registry of their own, made once per process: what they
 * describe is the process, and the observers they start (an event-loop
 * delay histogram, a GC observer) are never stopped, so an app built
 * again in the same process (tests do) must not start them again.
 */
export function processMetrics (): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}
