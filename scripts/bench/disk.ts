import fs from 'node:fs'
import path from 'node:path'

/*
 * The disk the servers' data folder is on, asked before the run makes the
 * folder: how much room it has, and which file system it is.
 */

/** The folder that stands for `dir` before the run makes it: `dir` or its nearest existing parent. */
function nearestExisting (dir: string): string {
  let existing = dir
  while (!fs.existsSync(existing)) existing = path.dirname(existing)
  return existing
}

/** Free space, in MB, of the file system that will hold `dir`. */
export async function freeDiskMB (dir: string): Promise<number> {
  const stats = await fs.promises.statfs(nearestExisting(dir))
  return (stats.bavail * stats.bsize) / 1e6
}

/** statfs magic numbers of the file systems C has been measured on (linux/magic.h). */
const FILE_SYSTEMS = new Map([[0xef53, 'ext4'], [0x58465342, 'XFS'], [0x9123683e, 'Btrfs'], [0x01021994, 'tmpfs'], [0x794c7630, 'overlayfs']])

/** The file system that will hold `dir`, by name where known. */
export function fileSystemOf (dir: string): string {
  const type = fs.statfsSync(nearestExisting(dir)).type
  return FILE_SYSTEMS.get(type) ?? `a file system of type 0x${type.toString(16)}`
}
