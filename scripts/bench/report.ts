import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { projectRoot } from '../../src/config.js'

export const RESULTS_DIR = path.join(projectRoot, 'scripts/bench/results')

export const say = (line: string): void => { process.stdout.write(`${line}\n`) }

const benchStarted = Date.now()
/** [m:ss] since the bench started, so a reader sees where the time goes. */
export const elapsed = (): string => {
  const seconds = Math.round((Date.now() - benchStarted) / 1000)
  return `[${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}]`
}

export const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
export const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0
export const average = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length)

/** What the raw results file says about the machine the numbers come from. */
export function machine (): { cpus: number, cpuModel: string, memoryGiB: number, node: string } {
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version }
}

/**
 * E's chart: a quick run draws its own, so a smoke run never rewrites the
 * tracked chart that the docs show.
 */
export function growthChartName (quick: boolean): string {
  return quick ? 'growth-quick.svg' : 'growth.svg'
}

/** --prefix's default: the name prefix of the bench's databases, and no suffix on its results. */
export const DEFAULT_PREFIX = 'bench'

/**
 * The raw results' file name: a quick run apart from a full one, and a run
 * with its own --prefix apart from the others, so two runs at once (the
 * test suite's) never read each other's results.
 */
export function resultsName ({ quick, prefix }: { quick: boolean, prefix: string }): string {
  const kind = quick ? 'quick' : 'latest'
  return prefix === DEFAULT_PREFIX ? `${kind}.json` : `${kind}-${prefix}.json`
}

/** Writes a file under scripts/bench/results/; returns its path. */
export function writeResult (name: string, content: string): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true })
  const file = path.join(RESULTS_DIR, name)
  fs.writeFileSync(file, content)
  return file
}
