import { createHash, type Hash } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs'
import type { Readable, Writable } from 'node:stream'
import { SchoolAdminError } from './school-admin.js'
import type { SequenceValue } from './table-copy.js'

/*
 * One school's backup, one file, read and written as a stream:
 *
 *   SCHOOL-LUNCH-BACKUP 1
 *   {"format":1,"school":{…},"migrations":[…],"tables":[…],…}    the manifest, one line of JSON
 *   TABLE lunch_week
 *   …rows in COPY text format, one a line…
 *   \.
 *   END lunch_week rows=3 sha256=…                                 that table's lines, hashed
 *   …one such section per table, in the manifest's order…
 *   END-OF-BACKUP sha256=…                                        every byte above, hashed
 *
 * COPY text escapes newlines and backslashes inside values, so a row is one
 * line and no row can read `\.`. A cut or edited file fails a hash or a
 * count, and the reader says which table.
 */

export const BACKUP_FORMAT = 1
const MAGIC = 'SCHOOL-LUNCH-BACKUP'
const NEWLINE = Buffer.from('\n')
const END_OF_DATA = '\\.'

export interface BackupTable {
  name: string
  columns: string[]
  /** Row count and checksum of the table as tableSum read them, in the backup's snapshot. */
  rows: number
  checksum: string
}

export interface BackupManifest {
  format: number
  school: { slug: string, name: string, databaseName: string, server: string }
  /** The school database's migration history; its last is the backup's migration. */
  migrations: string[]
  takenAt: string
  tables: BackupTable[]
  sequences: SequenceValue[]
  /** Seeds recorded as run for the school. */
  seeds: string[]
}

/** The file cannot be restored; nothing was changed. */
export class BackupRejected extends SchoolAdminError {
  override name = 'BackupRejected'
}

/** Writes a backup file: the manifest, then each table's rows from a COPY stream, then the file's hash. */
export class BackupWriter {
  private readonly whole = createHash('sha256')
  bytes = 0

  constructor (private readonly out: Writable) {}

  async manifest (manifest: BackupManifest): Promise<void> {
    await this.write(Buffer.from(`${MAGIC} ${BACKUP_FORMAT}\n${JSON.stringify(manifest)}\n`))
  }

  /** One table's section; the bytes of its rows. */
  async table (name: string, rows: Readable): Promise<{ rows: number, bytes: number }> {
    await this.write(Buffer.from(`TABLE ${name}\n`))
    const section = createHash('sha256')
    let count = 0
    let bytes = 0
    for await (const chunk of rows as AsyncIterable<Buffer>) {
      section.update(chunk)
      for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) count++
      bytes += chunk.length
      await this.write(chunk)
    }
    await this.write(Buffer.from(`${END_OF_DATA}\nEND ${name} rows=${count} sha256=${section.digest('hex')}\n`))
    return { rows: count, bytes }
  }

  async finish (): Promise<void> {
    await this.write(Buffer.from(`END-OF-BACKUP sha256=${this.whole.digest('hex')}\n`), false)
  }

  private async write (chunk: Buffer, hashed = true): Promise<void> {
    if (hashed) this.whole.update(chunk)
    this.bytes += chunk.length
    if (!this.out.write(chunk)) await once(this.out, 'drain')
  }
}

/** Lines of a file as buffers, without their newline; the hash of what came before the current line. */
class LineReader {
  private readonly chunks: AsyncIterator<Buffer>
  private buffered: Buffer = Buffer.alloc(0)
  private readonly whole: Hash = createHash('sha256')
  /** Hashed only when the next line is asked for, so the hash never includes the line in hand. */
  private current: Buffer | null = null
  private ended = false

  constructor (stream: Readable) {
    this.chunks = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
  }

  /** The next line; null at the end of the file. A last line without its newline is left out: it was cut. */
  async next (): Promise<Buffer | null> {
    if (this.current !== null) this.whole.update(this.current).update(NEWLINE)
    this.current = null
    for (;;) {
      const at = this.buffered.indexOf(10)
      if (at !== -1) {
        this.current = this.buffered.subarray(0, at)
        this.buffered = this.buffered.subarray(at + 1)
        return this.current
      }
      if (this.ended) return null
      const { value, done } = await this.chunks.next()
      if (done === true) this.ended = true
      else this.buffered = this.buffered.length === 0 ? value : Buffer.concat([this.buffered, value])
    }
  }

  /** The hash of every byte before the line in hand. */
  hashBefore (): string {
    return this.whole.copy().digest('hex')
  }
}

/** Receives one table's rows, each a line of COPY text without its newline. */
export type SectionLoader = (table: BackupTable, rows: AsyncIterable<Buffer>) => Promise<void>

/**
 * Reads a backup file through, checking its structure, counts and hashes,
 * and hands each table's rows to `load` if given. Throws BackupRejected
 * naming the table where the file was cut or altered.
 */
export async function readBackup (file: string, load?: SectionLoader): Promise<BackupManifest> {
  let stream: fs.ReadStream
  try {
    await fs.promises.access(file, fs.constants.R_OK)
    stream = fs.createReadStream(file)
  } catch (error) {
    throw new BackupRejected(`Cannot read ${file}: ${(error as Error).message}`)
  }
  const reader = new LineReader(stream)
  try {
    const manifest = await readManifest(reader)
    for (const table of manifest.tables) await readSection(reader, table, load)
    const last = await reader.next()
    const expected = `END-OF-BACKUP sha256=${reader.hashBefore()}`
    if (last === null) throw new BackupRejected('The file ends after its last table, without its closing line (it was cut short)')
    if (last.toString() !== expected) throw new BackupRejected('The file does not match its closing checksum: it was altered after it was written')
    if (await reader.next() !== null) throw new BackupRejected('The file goes on after its closing line')
    return manifest
  } finally {
    stream.destroy()
  }
}

async function readManifest (reader: LineReader): Promise<BackupManifest> {
  const magic = (await reader.next())?.toString() ?? ''
  const format = /^SCHOOL-LUNCH-BACKUP (\d+)$/.exec(magic)?.[1]
  if (format === undefined) throw new BackupRejected('This is not a school backup file (its first line is not SCHOOL-LUNCH-BACKUP)')
  if (Number(format) !== BACKUP_FORMAT) {
    throw new BackupRejected(`The backup is in format ${format}; this code reads format ${BACKUP_FORMAT} (made by ${Number(format) > BACKUP_FORMAT ? 'a newer' : 'another'} release)`)
  }
  let manifest: BackupManifest
  try {
    manifest = JSON.parse((await reader.next())?.toString() ?? '') as BackupManifest
  } catch {
    throw new BackupRejected('The backup\'s manifest (its second line) is not readable JSON')
  }
  if (!isManifest(manifest)) throw new BackupRejected('The backup\'s manifest lacks the school, its migrations or its tables')
  return manifest
}

function isManifest (value: BackupManifest): boolean {
  const strings = (list: unknown): boolean => Array.isArray(list) && list.every((item) => typeof item === 'string')
  return value?.format === BACKUP_FORMAT && typeof value.school?.slug === 'string' && typeof value.school.name === 'string' &&
    strings(value.migrations) && strings(value.seeds) && Array.isArray(value.sequences) && Array.isArray(value.tables) &&
    value.tables.every((t) => typeof t?.name === 'string' && strings(t.columns) && Number.isSafeInteger(t.rows) && typeof t.checksum === 'string')
}

async function readSection (reader: LineReader, table: BackupTable, load: SectionLoader | undefined): Promise<void> {
  const head = await reader.next()
  if (head === null) throw new BackupRejected(`The file ends before table ${table.name}: it was cut short`)
  if (head.toString() !== `TABLE ${table.name}`) throw new BackupRejected(`Table ${table.name} is not where the manifest puts it: the file was altered`)
  const section = createHash('sha256')
  let rows = 0
  async function * lines (): AsyncGenerator<Buffer> {
    for (;;) {
      const line = await reader.next()
      if (line === null) throw new BackupRejected(`The file ends inside table ${table.name}: it was cut short`)
      if (line.length === 2 && line.toString() === END_OF_DATA) return
      section.update(line).update(NEWLINE)
      rows++
      yield line
    }
  }
  if (load === undefined) for await (const line of lines()) void line
  else await load(table, lines())
  const end = /^END (\S+) rows=(\d+) sha256=([0-9a-f]{64})$/.exec((await reader.next())?.toString() ?? '')
  if (end === null || end[1] !== table.name) throw new BackupRejected(`Table ${table.name} lacks its closing line: the file was cut short or altered`)
  if (Number(end[2]) !== rows || end[3] !== section.digest('hex')) {
    throw new BackupRejected(`Table ${table.name}: its rows do not match their checksum; the file was altered or damaged`)
  }
  if (rows !== table.rows) throw new BackupRejected(`Table ${table.name}: the file holds ${rows} row(s), its manifest says ${table.rows}`)
}

/** Rows (lines without newline) back into COPY text, in chunks of about 64 kB. */
export async function * copyText (rows: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let batch: Buffer[] = []
  let size = 0
  for await (const row of rows) {
    batch.push(row, NEWLINE)
    size += row.length + 1
    if (size >= 65_536) {
      yield Buffer.concat(batch)
      batch = []
      size = 0
    }
  }
  if (batch.length > 0) yield Buffer.concat(batch)
}
