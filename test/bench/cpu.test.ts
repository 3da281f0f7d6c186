import t from 'tap'
import { countCpu } from '../../scripts/bench/cpu.js'

// Works until this process has used `ms` of CPU time, however busy the
// machine is: something to count, not a wait. The sum is returned so the
// loop is not optimised away.
function burn (ms: number): number {
  const start = process.cpuUsage()
  const used = (): number => { const { user, system } = process.cpuUsage(start); return (user + system) / 1000 }
  let sum = 0
  while (used() < ms) for (let i = 0; i < 10_000; i++) sum += Math.sqrt(i)
  return sum
}

t.test('CPU time is split per request between the service, the load generator and the rest', async (t) => {
  // This process plays both the service and the load generator: the two
  // figures must then agree, and the machine must count at least them.
  const counter = countCpu(process.pid)
  t.not(counter, null, 'the bench runs on Linux, where /proc is')
  if (counter === null) return
  burn(300)
  const cpu = counter.stop(10)
  if (cpu === null) throw new Error('no figures from /proc')
  // 10 requests over 300 ms of CPU time: at least 30,000 µs each; ticks are 10 ms.
  t.ok(cpu.load >= 30_000, `load generator ${cpu.load} µs a request`)
  t.ok(Math.abs(cpu.service - cpu.load) <= 2_000 + cpu.load * 0.1, `service ${cpu.service} and load ${cpu.load} count one process`)
  t.ok(cpu.serviceKernel >= 0 && cpu.serviceKernel <= cpu.service, 'the kernel share is part of the service')
  t.ok(cpu.machine >= cpu.service - 2_000, `machine ${cpu.machine} counts the service`)
})

t.test('no figures for a run that served nothing, or for a process that is gone', async (t) => {
  const counter = countCpu(process.pid)
  t.not(counter, null, 'the bench runs on Linux, where /proc is')
  if (counter === null) return
  t.equal(counter.stop(0), null)
  t.equal(countCpu(2 ** 22 + 1), null, 'a pid past pid_max has no /proc entry')
})
