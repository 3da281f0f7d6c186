export interface Progress { done: number, total: number, failed?: number }

export interface ProgressLine {
  /** Rewrites the line; undefined when the stream is not a terminal, so callers pass it on as an optional callback. */
  update: ((progress: Progress) => void) | undefined
  /** Ends the line, if one was written. */
  end: () => void
}

/** A `<label>: N/M done` line that counts up in place on a terminal, and stays silent elsewhere (logs, pipes). */
export function progressLine (label: string, stream: NodeJS.WriteStream = process.stderr): ProgressLine {
  let written = false
  const update = ({ done, total, failed = 0 }: Progress): void => {
    written = true
    stream.write(`\r${label}: ${done}/${total} done${failed > 0 ? `, ${failed} failed` : ''}   `)
  }
  return {
    update: stream.isTTY ? update : undefined,
    end: () => { if (written) stream.write('\n') }
  }
}
