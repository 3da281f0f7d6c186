export interface GrowthPoint { schools: number, rps: number, p99: number }
export interface GrowthCurve { label: string, points: GrowthPoint[] }

const COLORS = ['#4c78a8', '#f58518', '#54a24b']

/**
 * The growth curves as a small self-contained SVG: req/s (solid lines, left
 * axis) and p99 latency (dashed, right axis) against the number of active
 * schools, one point per size, sizes spaced evenly (a log scale).
 */
export function growthChart (curves: GrowthCurve[], caption: string): string {
  const width = 680
  const height = 380
  const box = { left: 70, right: 70, top: 40, bottom: 80 }
  const plotW = width - box.left - box.right
  const plotH = height - box.top - box.bottom
  const sizes = [...new Set(curves.flatMap((c) => c.points.map((p) => p.schools)))].sort((a, b) => a - b)
  const all = curves.flatMap((c) => c.points)
  const maxRps = Math.max(...all.map((p) => p.rps), 1) * 1.15
  const maxP99 = Math.max(...all.map((p) => p.p99), 1) * 1.15
  const step = plotW / Math.max(1, sizes.length)
  const x = (schools: number): number => box.left + step * (sizes.indexOf(schools) + 0.5)
  const yRps = (v: number): number => box.top + plotH - (v / maxRps) * plotH
  const yP99 = (v: number): number => box.top + plotH - (v / maxP99) * plotH
  const esc = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;')

  const series = curves.map((curve, i) => {
    const color = COLORS[i % COLORS.length] ?? '#333'
    const rps = curve.points.map((p) => `${x(p.schools).toFixed(1)},${yRps(p.rps).toFixed(1)}`).join(' ')
    const p99 = curve.points.map((p) => `${x(p.schools).toFixed(1)},${yP99(p.p99).toFixed(1)}`).join(' ')
    const labels = curve.points.map((p) =>
      `<circle cx="${x(p.schools).toFixed(1)}" cy="${yRps(p.rps).toFixed(1)}" r="4" fill="${color}"/>` +
      `<text x="${x(p.schools).toFixed(1)}" y="${(yRps(p.rps) - 8).toFixed(1)}" text-anchor="middle" font-size="11" fill="${color}">${Math.round(p.rps)}</text>`).join('\n')
    const legendY = height - 40 + i * 14
    return `<polyline points="${rps}" fill="none" stroke="${color}" stroke-width="2"/>
<polyline points="${p99}" fill="none" stroke="${color}" stroke-width="1.5" stroke-dasharray="5,4"/>
${labels}
<line x1="${box.left}" y1="${legendY - 4}" x2="${box.left + 24}" y2="${legendY - 4}" stroke="${color}" stroke-width="2"/>
<text x="${box.left + 30}" y="${legendY}" font-size="11">${esc(curve.label)}: req/s (solid), p99 ms (dashed)</text>`
  }).join('\n')
  const ticks = sizes.map((schools) => `<text x="${x(schools).toFixed(1)}" y="${box.top + plotH + 16}" text-anchor="middle" font-size="12">${schools}</text>`).join('\n')

  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">Throughput and p99 as active schools grow</text>
<line x1="${box.left}" y1="${box.top + plotH}" x2="${box.left + plotW}" y2="${box.top + plotH}" stroke="#333"/>
<line x1="${box.left}" y1="${box.top}" x2="${box.left}" y2="${box.top + plotH}" stroke="#333"/>
<line x1="${box.left + plotW}" y1="${box.top}" x2="${box.left + plotW}" y2="${box.top + plotH}" stroke="#333"/>
<text x="18" y="${box.top + plotH / 2}" transform="rotate(-90 18 ${box.top + plotH / 2})" text-anchor="middle" font-size="12">requests per second (max ${Math.round(maxRps / 1.15)})</text>
<text x="${width - 18}" y="${box.top + plotH / 2}" transform="rotate(90 ${width - 18} ${box.top + plotH / 2})" text-anchor="middle" font-size="12">p99 latency, ms (max ${Math.round(maxP99 / 1.15)})</text>
<text x="${box.left + plotW / 2}" y="${box.top + plotH + 32}" text-anchor="middle" font-size="12">active schools</text>
${ticks}
${series}
<text x="${width - 6}" y="${height - 6}" text-anchor="end" font-size="10" fill="#666">${esc(caption)}</text>
</svg>
`
}
