/*
 * Just enough of Markdown for the tests of the docs: fenced blocks,
 * headings and their GitHub anchors, and the links of the prose. Text
 * inside a fence is never a heading or a link.
 */

export interface FencedBlock {
  /** The word after the opening fence: `sh`, `text`, or '' for none. */
  info: string
  body: string
  /** 1-based lines of the opening and the closing fence. */
  line: number
  end: number
}

export interface Heading { level: number, text: string, line: number }

export interface Link { target: string, line: number }

interface Parsed {
  blocks: FencedBlock[]
  /** Every line, with the lines of fenced blocks (fences included) blanked. */
  prose: string[]
}

const FENCE = /^\s*(`{3,}|~{3,})\s*([\w-]*)/

function parse (markdown: string): Parsed {
  const blocks: FencedBlock[] = []
  const prose: string[] = []
  let open: { fence: string, info: string, line: number, body: string[] } | null = null
  markdown.split('\n').forEach((text, index) => {
    const fence = FENCE.exec(text)
    if (open === null) {
      if (fence !== null) {
        open = { fence: fence[1] ?? '```', info: fence[2] ?? '', line: index + 1, body: [] }
        prose.push('')
      } else {
        prose.push(text)
      }
      return
    }
    prose.push('')
    if (fence !== null && text.trim().startsWith(open.fence) && text.trim().replace(/[`~]/g, '') === '') {
      blocks.push({ info: open.info, body: open.body.join('\n'), line: open.line, end: index + 1 })
      open = null
    } else {
      open.body.push(text.replace(/^ {0,3}/, ''))
    }
  })
  return { blocks, prose }
}

/** The fenced blocks of a document, in order. */
export function fencedBlocks (markdown: string): FencedBlock[] {
  return parse(markdown).blocks
}

/** The ATX headings (`## …`) outside fenced blocks. */
export function headings (markdown: string): Heading[] {
  const found: Heading[] = []
  parse(markdown).prose.forEach((text, index) => {
    const heading = /^(#{1,6})\s+(.+?)\s*#*\s*$/.exec(text)
    if (heading !== null) found.push({ level: heading[1]?.length ?? 1, text: heading[2] ?? '', line: index + 1 })
  })
  return found
}

/**
 * GitHub's anchor for a heading: the text as rendered (code marks and link
 * targets gone), lowercased, every character but letters, digits, spaces,
 * `-` and `_` dropped, then each space turned into a hyphen.
 */
export function slug (headingText: string): string {
  const rendered = headingText
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`/g, '')
  return rendered.toLowerCase().replace(/[^\p{L}\p{N}\p{M} _-]/gu, '').replace(/ /g, '-')
}

/** Every anchor a document offers; a repeated heading gets `-1`, `-2`, … as on GitHub. */
export function anchors (markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const result = new Set<string>()
  for (const heading of headings(markdown)) {
    const base = slug(heading.text)
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    result.add(count === 0 ? base : `${base}-${count}`)
  }
  return result
}

/** The links and images of the prose, `[text](target)`, outside code spans and fenced blocks. */
export function links (markdown: string): Link[] {
  const found: Link[] = []
  parse(markdown).prose.forEach((text, index) => {
    const withoutCode = text.replace(/(`+)[^`]*?\1/g, '')
    for (const match of withoutCode.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      found.push({ target: match[1] ?? '', line: index + 1 })
    }
  })
  return found
}

/**
 * The part of a document under the heading `text`, up to the next heading
 * of the same level or higher, and the document's line that part starts
 * on; null when there is no such heading.
 */
export function section (markdown: string, text: string): { body: string, line: number } | null {
  const all = headings(markdown)
  const start = all.find((h) => h.text === text)
  if (start === undefined) return null
  const next = all.find((h) => h.line > start.line && h.level <= start.level)
  const lines = markdown.split('\n')
  return { body: lines.slice(start.line, next === undefined ? lines.length : next.line - 1).join('\n'), line: start.line + 1 }
}
