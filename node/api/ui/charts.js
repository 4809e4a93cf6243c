// @ts-check
/**
 * Small inline SVG line charts for the status page, and the rates they draw.
 *
 * A chart is redrawn whole at every refresh (a few dozen points): no
 * library, no canvas state to keep.
 */

const SVG = 'http://www.w3.org/2000/svg'
const WIDTH = 320
const HEIGHT = 96
const PAD_TOP = 8
const PAD_BOTTOM = 4

/**
 * @typedef {{ label: string, color: string, points: Array<[number, number]> }} Series
 *   one line: points are [time ms, value]
 */

/**
 * Per-second rates of a counter from its samples: one point per pair of
 * samples. A counter that went down (the daemon restarted) gives no point.
 *
 * @param {Array<[number, number | undefined]>} samples [time ms, counter value]
 * @returns {Array<[number, number]>}
 */
export function rates (samples) {
  /** @type {Array<[number, number]>} */
  const out = []
  for (let i = 1; i < samples.length; i++) {
    const [t0, v0] = samples[i - 1]
    const [t1, v1] = samples[i]
    if (v0 === undefined || v1 === undefined || t1 <= t0 || v1 < v0) continue
    out.push([t1, (v1 - v0) / ((t1 - t0) / 1000)])
  }
  return out
}

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 */
function svg (tag, attrs) {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  return el
}

/**
 * A line chart with its title, the latest value of each series and the
 * top of its scale.
 *
 * @param {{ title: string, series: Series[], format: (v: number) => string, spanMs: number }} chart
 * @returns {HTMLElement}
 */
export function lineChart ({ title, series, format, spanMs }) {
  const figure = document.createElement('figure')
  figure.className = 'chart'
  // how many points the longest line has (tests wait on it)
  figure.dataset.points = String(series.reduce((n, s) => Math.max(n, s.points.length), 0))
  const caption = document.createElement('figcaption')
  const name = document.createElement('span')
  name.className = 'chart-title'
  name.textContent = title
  caption.append(name)
  for (const s of series) {
    const last = s.points.at(-1)
    const item = document.createElement('span')
    item.className = 'legend'
    const dot = document.createElement('i')
    dot.style.background = s.color
    item.append(dot, `${s.label} ${last === undefined ? '–' : format(last[1])}`)
    caption.append(item)
  }

  const all = series.flatMap(s => s.points)
  const now = all.reduce((m, p) => Math.max(m, p[0]), 0)
  const max = niceMax(all.reduce((m, p) => Math.max(m, p[1]), 0))
  const plot = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': title })
  for (const f of [0.25, 0.5, 0.75]) {
    const y = PAD_TOP + (HEIGHT - PAD_TOP - PAD_BOTTOM) * f
    plot.append(svg('line', { x1: 0, x2: WIDTH, y1: y, y2: y, class: 'gridline' }))
  }
  const x = (/** @type {number} */ t) => WIDTH - ((now - t) / spanMs) * WIDTH
  const y = (/** @type {number} */ v) => HEIGHT - PAD_BOTTOM - (v / max) * (HEIGHT - PAD_TOP - PAD_BOTTOM)
  for (const s of series) {
    if (s.points.length === 0) continue
    const pts = s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`)
    if (s.points.length === 1) pts.unshift(`${(x(s.points[0][0]) - 2).toFixed(1)},${y(s.points[0][1]).toFixed(1)}`)
    const first = pts[0].split(',')[0]
    const lastX = pts.at(-1)?.split(',')[0] ?? first
    plot.append(svg('polygon', { points: `${first},${HEIGHT} ${pts.join(' ')} ${lastX},${HEIGHT}`, fill: s.color, 'fill-opacity': 0.12 }))
    plot.append(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: s.color, 'stroke-width': 1.6, 'vector-effect': 'non-scaling-stroke', 'stroke-linejoin': 'round' }))
  }
  const frame = document.createElement('div')
  frame.className = 'chart-frame'
  const top = document.createElement('span')
  top.className = 'chart-max'
  top.textContent = all.length === 0 ? 'collecting…' : format(max)
  frame.append(plot, top)
  figure.append(caption, frame)
  return figure
}

/**
 * A round number at or above `v` for the top of a scale (1, 2 or 5 × 10^n).
 *
 * @param {number} v
 */
function niceMax (v) {
  if (!(v > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p
  return 10 * p
}
