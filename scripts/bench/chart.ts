export interface GrowthPoint { schools: number, rps: number, p99: number }

/**
 * The growth curve as a small self-contained SVG: req/s (bars) and p99
 * latency (line) against the number of active schools, on a log scale.
 */
export function growthChart (points: GrowthPoint[], caption: string): string {
  const width = 640
  const height = 360
  const left = 70
  const right = 70
  const top = 40
  const bottom = 60
  const plotW = width - left - right
  const plotH = height - top - bottom
  const maxRps = Math.max(...points.map((p) => p.rps), 1) * 1.15
  const maxP99 = Math.max(...points.map((p) => p.p99), 1) * 1.15
  const step = plotW / points.length
  const x = (i: number): number => left + step * (i + 0.5)
  const yRps = (v: number): number => top + plotH - (v / maxRps) * plotH
  const yP99 = (v: number): number => top + plotH - (v / maxP99) * plotH
  const esc = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;')

  const bars = points.map((p, i) => {
    const h = top + plotH - yRps(p.rps)
    return `<rect x="${(x(i) - step * 0.3).toFixed(1)}" y="${yRps(p.rps).toFixed(1)}" width="${(step * 0.6).toFixed(1)}" height="${h.toFixed(1)}" fill="#4c78a8"/>` +
      `<text x="${x(i).toFixed(1)}" y="${(yRps(p.rps) - 6).toFixed(1)}" text-anchor="middle" font-size="12">${Math.round(p.rps)}</text>` +
      `<text x="${x(i).toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle" font-size="12">${p.schools}</text>`
  }).join('\n')
  const line = points.map((p, i) => `${x(i).toFixed(1)},${yP99(p.p99).toFixed(1)}`).join(' ')
  const dots = points.map((p, i) => `<circle cx="${x(i).toFixed(1)}" cy="${yP99(p.p99).toFixed(1)}" r="4" fill="#e45756"/>` +
    `<text x="${(x(i) + 8).toFixed(1)}" y="${(yP99(p.p99) + 4).toFixed(1)}" font-size="11" fill="#e45756">${p.p99} ms</text>`).join('\n')

  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">Throughput and p99 as active schools grow (fixed connection budget)</text>
<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/>
<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>
<line x1="${left + plotW}" y1="${top}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/>
<text x="18" y="${top + plotH / 2}" transform="rotate(-90 18 ${top + plotH / 2})" text-anchor="middle" font-size="12" fill="#4c78a8">requests per second</text>
<text x="${width - 18}" y="${top + plotH / 2}" transform="rotate(90 ${width - 18} ${top + plotH / 2})" text-anchor="middle" font-size="12" fill="#e45756">p99 latency (ms)</text>
<text x="${left + plotW / 2}" y="${top + plotH + 38}" text-anchor="middle" font-size="12">active schools</text>
${bars}
<polyline points="${line}" fill="none" stroke="#e45756" stroke-width="2"/>
${dots}
<text x="${left}" y="${height - 6}" font-size="10" fill="#666">${esc(caption)}</text>
</svg>
`
}
