import fs from 'node:fs'

/** CPU time of a measured run, in µs per request, split by who spent it. */
export interface CpuPerRequest {
  /** Every core of the machine, busy (not idle, not waiting on I/O, not stolen). */
  machine: number
  /** The service's process. */
  service: number
  /** Of that, in the kernel (system time): sockets, and waking whoever reads them. */
  serviceKernel: number
  /** This process: the load generator. */
  load: number
  /** The rest: PostgreSQL's backends, the kernel's work for them, neighbours. */
  rest: number
}

// Linux counts process and machine CPU time in clock ticks of 1/100 s
// (CLK_TCK, 100 on every architecture Node supports).
const TICK_US = 10_000

/** Busy ticks of all cores, from the first line of /proc/stat. */
function machineTicks (): number {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]?.trim().split(/\s+/).slice(1).map(Number) ?? []
  // user nice system idle iowait irq softirq steal ...: idle, iowait and steal are not work done here.
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = fields
  return user + nice + system + irq + softirq
}

/** User and system time of one process, in ticks. */
function processTicks (pid: number): { user: number, system: number } {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name, in parentheses, may hold spaces: count fields after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return { user: Number(fields[11]), system: Number(fields[12]) }
}

/**
 * Starts counting CPU time; `stop(requests)` gives it per request. Null
 * where /proc cannot be read (not Linux).
 */
export function countCpu (servicePid: number): { stop: (requests: number) => CpuPerRequest | null } | null {
  try {
    const start = { machine: machineTicks(), service: processTicks(servicePid), load: process.cpuUsage() }
    return {
      stop: (requests) => {
        if (requests <= 0) return null
        try {
          const machine = (machineTicks() - start.machine) * TICK_US / requests
          const ticks = processTicks(servicePid)
          const serviceKernel = (ticks.system - start.service.system) * TICK_US / requests
          const service = (ticks.user - start.service.user) * TICK_US / requests + serviceKernel
          const used = process.cpuUsage(start.load)
          const load = (used.user + used.system) / requests
          return { machine, service, serviceKernel, load, rest: Math.max(0, machine - service - load) }
        } catch {
          return null
        }
      }
    }
  } catch {
    return null
  }
}
