// @ts-check
/**
 * The status page: logs in with the API token, then reads the node's JSON
 * API every few seconds and draws what it answers.
 *
 * The token comes from the login form or from the URL fragment
 * (`#token=…`, as `shoal ui` prints it: a fragment is never sent to the
 * server; a link pasted into an open tab is taken too), is kept in
 * sessionStorage (gone when the tab closes) and sent as
 * `Authorization: Bearer` on every request. Everything shown comes from
 * the node and is put in the page as text, never as HTML.
 *
 * Refreshes never overlap: each belongs to a generation of the polling
 * (a login starts one, a logout ends it) and draws nothing once its
 * generation is over; polling pauses while the tab is hidden. A figure
 * that could not be read keeps its last value, and its card says it is not
 * current.
 */
import { lineChart, rates } from './charts.js'

/** Milliseconds between refreshes. */
const REFRESH_MS = 5000
/** Pins and conflicts (neither changes often) are read every this many refreshes. */
const PINS_EVERY = 3
/** Longest wait for one answer of the node (ms). */
const ANSWER_TIMEOUT_MS = 20000
/** Samples of the counters kept for the graphs (10 minutes). */
const MAX_SAMPLES = 120
const TOKEN_KEY = 'shoal.token'

const COLORS = { in: '#2f7de1', out: '#e0803a', write: '#8a5cd6', read: '#1aa37a', repair: '#d64c6a', scrub: '#7d8797' }

/** An answer of the API that is not a success: its status and `{error: {name, message}}`. */
class ApiError extends Error {
  /** @param {number} status @param {string} name @param {string} message */
  constructor (status, name, message) {
    super(message)
    this.name = name
    this.status = status
  }
}

// ------------------------------------------------------------------ helpers

/**
 * A DOM element with attributes and children (strings become text nodes).
 *
 * @param {string} tag
 * @param {Record<string, string | undefined> | null} [attrs]
 * @param {Array<Node | string | null | undefined | false>} children
 * @returns {HTMLElement}
 */
function h (tag, attrs, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs ?? {})) if (v !== undefined) el.setAttribute(k, v)
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c)
  return el
}

/** @param {string} id */
function $ (id) {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`the page has no #${id}`)
  return el
}

/** @param {string} id @param {...(Node | string)} children */
function fill (id, ...children) {
  $(id).replaceChildren(...children)
}

/** @param {number | undefined} n */
function bytes (n) {
  if (n === undefined || !Number.isFinite(n)) return '–'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${Math.round(n)} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

/** @param {number} n */
const perSecond = n => `${bytes(n)}/s`

/** @param {number} ms */
function duration (ms) {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min`
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)} min`
  return `${Math.floor(s / 86400)} d ${Math.floor(s % 86400 / 3600)} h`
}

/** @param {number} t ms since the epoch */
function ago (t) {
  return `${duration(Date.now() - t)} ago`
}

/** A peer id, shortened, with the whole id on hover. @param {string} id */
function peer (id) {
  return h('span', { class: 'mono', title: id }, id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id)
}

/** @param {string} text @param {string} kind */
function badge (text, kind) {
  return h('span', { class: `badge ${kind}` }, text)
}

/** @param {string} text */
function empty (text) {
  return h('p', { class: 'empty' }, text)
}

/**
 * A table with a header row.
 *
 * @param {string[]} head
 * @param {Array<Array<Node | string>>} rows
 * @param {string} [cls]
 */
function table (head, rows, cls) {
  return h('table', { class: cls },
    h('thead', null, h('tr', null, ...head.map(t => h('th', null, t)))),
    h('tbody', null, ...rows.map(r => h('tr', null, ...r.map(c => h('td', null, c))))))
}

// ---------------------------------------------------------------------- API

/** @returns {string | null} */
function token () {
  return sessionStorage.getItem(TOKEN_KEY)
}

/**
 * GET a path of the API with the token. A node that refuses the connection
 * is a `NetworkError` (its daemon is not running); one that does not answer
 * within {@link ANSWER_TIMEOUT_MS} a `TimeoutError` (it runs, but is busy
 * or stuck); a request given up by `signal` an `AbortError`.
 *
 * @param {string} path
 * @param {'json' | 'text'} [as]
 * @param {AbortSignal} [signal]
 */
async function api (path, as = 'json', signal) {
  let res
  const timeout = AbortSignal.timeout(ANSWER_TIMEOUT_MS)
  try {
    res = await fetch(path, { headers: { authorization: `Bearer ${token() ?? ''}` }, cache: 'no-store', signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) })
  } catch (err) {
    if (signal?.aborted === true) throw new ApiError(0, 'AbortError', 'given up')
    if (timeout.aborted) throw new ApiError(0, 'TimeoutError', `the node at ${location.host} did not answer ${path} within ${ANSWER_TIMEOUT_MS / 1000} s: its daemon runs but is busy or stuck`)
    throw new ApiError(0, 'NetworkError', `the node does not answer at ${location.host} (${String(/** @type {any} */ (err)?.message ?? err)}): is its daemon running?`)
  }
  if (!res.ok) {
    let name = 'ApiError'
    let message = `HTTP ${res.status}`
    try {
      const body = await res.json()
      name = body.error.name
      message = body.error.message
    } catch {}
    throw new ApiError(res.status, name, message)
  }
  return as === 'json' ? await res.json() : await res.text()
}

/**
 * `api(path)`, or `{ error }` when it failed: one failing part of the page does not hide the others.
 *
 * @param {string} path @param {'json' | 'text'} as @param {AbortSignal} signal
 * @returns {Promise<{ value?: any, error?: ApiError }>}
 */
async function attempt (path, as, signal) {
  try { return { value: await api(path, as, signal) } } catch (err) { return { error: /** @type {ApiError} */ (err) } }
}

// ----------------------------------------------------------------- metrics

/**
 * Parse Prometheus text into name → [{labels, value}].
 *
 * @param {string} text
 * @returns {Map<string, Array<{ labels: Record<string, string>, value: number }>>}
 */
function parseMetrics (text) {
  const out = new Map()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    /** @type {Record<string, string>} */
    const labels = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1')
    const value = Number(m[3])
    if (!Number.isFinite(value)) continue
    if (!out.has(m[1])) out.set(m[1], [])
    out.get(m[1]).push({ labels, value })
  }
  return out
}

/**
 * The sum of a metric's values whose labels match, or undefined when it is missing.
 *
 * @param {ReturnType<typeof parseMetrics>} metrics
 * @param {string} name
 * @param {(labels: Record<string, string>) => boolean} [match]
 */
function sum (metrics, name, match = () => true) {
  const list = metrics.get(name)?.filter(s => match(s.labels))
  return list === undefined || list.length === 0 ? undefined : list.reduce((a, s) => a + s.value, 0)
}

/**
 * The sum of two counters, or the one there is (undefined when neither is).
 *
 * @param {number | undefined} a
 * @param {number | undefined} b
 * @returns {number | undefined}
 */
function plus (a, b) {
  return a === undefined ? b : b === undefined ? a : a + b
}

/** @typedef {{ t: number, netIn?: number, netOut?: number, written?: number, read?: number, repair?: number, scrub?: number, protocols: Map<string, number> }} Sample */

/** @type {Sample[]} */
const samples = []

/**
 * One sample of the counters the graphs draw. Network bytes come from
 * libp2p's transfer metric; without it, from the per-peer totals.
 *
 * @param {ReturnType<typeof parseMetrics>} metrics
 * @param {any[] | undefined} peers
 * @returns {Sample}
 */
function sample (metrics, peers) {
  const transfer = 'libp2p_data_transfer_bytes_total'
  // libp2p's naming, which Shoal keeps: one label holds both
  // ({protocol="/shoal/blocks/1.0.0 sent"}, "global received"); a separate
  // `direction` label is read too, so either form gives "protocol direction"
  const key = (/** @type {Record<string, string>} */ l) => l.direction === undefined ? l.protocol ?? '' : `${l.protocol ?? ''} ${l.direction}`
  /** @type {Map<string, number>} */
  const protocols = new Map()
  for (const s of metrics.get(transfer) ?? []) {
    const k = key(s.labels)
    if (!k.startsWith('global')) protocols.set(k, (protocols.get(k) ?? 0) + s.value)
  }
  const peerSum = (/** @type {'bytesIn' | 'bytesOut'} */ k) => peers?.some(p => typeof p[k] === 'number') === true ? peers.reduce((a, p) => a + (p[k] ?? 0), 0) : undefined
  return {
    t: Date.now(),
    netIn: sum(metrics, transfer, l => key(l) === 'global received') ?? peerSum('bytesIn'),
    netOut: sum(metrics, transfer, l => key(l) === 'global sent') ?? peerSum('bytesOut'),
    written: sum(metrics, 'shoal_block_bytes_written_total'),
    // blocks read through the block store, and records the FUSE binding read itself (mounted reads of files here)
    read: plus(sum(metrics, 'shoal_blocks_read_total'), sum(metrics, 'shoal_fuse_records_read_total')),
    repair: sum(metrics, 'shoal_durability_repair_bytes_total'),
    scrub: sum(metrics, 'shoal_durability_scrub_bytes_total'),
    protocols
  }
}

// ------------------------------------------------------------------ drawing

/** @param {any} status @param {any} node */
function drawNode (status, node) {
  // a function: the badge is shown twice (card and top bar), one element each
  const swarm = () => (status?.swarm ?? node?.swarm) === 'private'
    ? badge('private swarm', 'ok')
    : badge('open swarm', 'warn')
  const rows = [
    ['Peer ID', h('span', { class: 'mono wrap', id: 'peer-id' }, status?.id ?? node?.id ?? '–')],
    ['Swarm', h('span', null, swarm(), ' ', status?.writers !== undefined ? `writers: ${status.writers}` : '')],
    ['Version', node === undefined ? '–' : `Shoal ${node.version} · Node.js ${node.node} · ${node.platform}`],
    ['Up', node === undefined ? '–' : duration(node.uptimeSeconds * 1000)],
    ['Repo', h('span', { class: 'mono wrap' }, node?.repo ?? status?.repo ?? '–')],
    ['Addresses', h('ul', { class: 'plain mono wrap' }, ...(status?.addresses ?? node?.addresses ?? []).map((/** @type {string} */ a) => h('li', null, a)))]
  ]
  fill('node', ...rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]))
  $('node-badge').replaceChildren(status?.id !== undefined ? peer(status.id) : '', ' ', swarm())
}

/**
 * The Storage card: what the repo takes of its disk, by part (`disk` of
 * `/api/v0/status`), what else is on that disk, and what is free.
 *
 * @param {any} status @param {any} node
 */
function drawDisk (status, node) {
  const d = status?.disk
  const parts = []
  if (d !== undefined && d.totalBytes > 0) {
    const repoRest = d.namespaceBytes + d.durabilityBytes + d.otherBytes
    const outside = Math.max(0, d.totalBytes - d.freeBytes - d.repoBytes)
    const pct = (/** @type {number} */ n) => `${(100 * Math.max(0, n) / d.totalBytes).toFixed(2)}%`
    parts.push(h('p', { class: 'disk-total' }, 'The repo takes ', h('b', { id: 'disk-used' }, bytes(d.repoBytes)), ' of its disk'))
    parts.push(h('div', { class: 'bar', title: 'blocks · rest of the repo · other files · free' },
      h('span', { class: 'seg blocks', 'data-w': pct(d.blocksBytes) }),
      h('span', { class: 'seg repo', 'data-w': pct(repoRest) }),
      h('span', { class: 'seg other', 'data-w': pct(outside) }),
      h('span', { class: 'seg free', 'data-w': pct(d.freeBytes) })))
    parts.push(h('ul', { class: 'legend-list' },
      h('li', null, h('i', { class: 'sw blocks' }), 'blocks ', h('b', null, bytes(d.blocksBytes))),
      h('li', null, h('i', { class: 'sw repo' }), 'namespace ', h('b', null, bytes(d.namespaceBytes)), ', durability ', h('b', null, bytes(d.durabilityBytes)), ', other ', h('b', null, bytes(d.otherBytes))),
      h('li', null, h('i', { class: 'sw other' }), 'other files on the disk ', h('b', null, bytes(outside))),
      h('li', null, h('i', { class: 'sw free' }), 'free ', h('b', { id: 'disk-free' }, bytes(d.freeBytes)), ` of ${bytes(d.totalBytes)}`)))
  } else {
    parts.push(h('p', null, 'Shoal blocks: ', h('b', { id: 'disk-used' }, bytes(status?.blockstoreBytes))))
  }
  const storage = status?.storage
  const reserve = node?.disk?.reserve
  parts.push(h('dl', { class: 'compact' },
    h('dt', null, 'Kept free'), h('dd', null, reserve === undefined ? '–' : `${bytes(reserve)} (writes stop there)`),
    h('dt', null, 'Held for others'), h('dd', null, storage === undefined ? '–' : `${bytes(storage.heldForOthers)} of ${bytes(storage.maxForOthers)} allowed`)))
  fill('disk', ...parts)
  // widths through the CSSOM: the page's CSP allows no inline style attributes
  for (const seg of /** @type {NodeListOf<HTMLElement>} */ ($('disk').querySelectorAll('.seg'))) seg.style.width = seg.dataset.w ?? '0'
}

function drawCharts () {
  // the time axis grows with the samples, up to MAX_SAMPLES of them
  const spanMs = Math.max(1000, (samples.at(-1)?.t ?? 0) - (samples[1]?.t ?? samples[0]?.t ?? 0))
  /** @param {keyof Sample} key */
  const series = key => rates(samples.map(s => [s.t, /** @type {number | undefined} */ (s[key])]))
  const latest = samples.at(-1)
  const charts = [
    lineChart({ title: 'Network', spanMs, format: perSecond, series: [{ label: 'in', color: COLORS.in, points: series('netIn') }, { label: 'out', color: COLORS.out, points: series('netOut') }] }),
    lineChart({ title: 'Disk writes', spanMs, format: perSecond, series: [{ label: 'blocks', color: COLORS.write, points: series('written') }] }),
    lineChart({ title: 'Block reads', spanMs, format: v => `${v < 10 ? v.toFixed(1) : Math.round(v)}/s`, series: [{ label: 'blocks', color: COLORS.read, points: series('read') }] })
  ]
  if (latest?.repair !== undefined || latest?.scrub !== undefined) {
    charts.push(lineChart({ title: 'Repair and scrub', spanMs, format: perSecond, series: [{ label: 'repair', color: COLORS.repair, points: series('repair') }, { label: 'scrub', color: COLORS.scrub, points: series('scrub') }] }))
  }
  fill('charts', ...charts)
  const notes = []
  if (latest !== undefined && latest.netIn === undefined) notes.push('No network counter on this node (libp2p transfer metrics or per-peer traffic).')
  if (latest !== undefined && latest.written === undefined) notes.push('No block store counters in /metrics.')
  // per protocol, busiest first, over the last two samples
  const prev = samples.at(-2)
  if (latest !== undefined && prev !== undefined && latest.protocols.size > 0) {
    const dt = (latest.t - prev.t) / 1000
    /** @type {Map<string, { in: number, out: number }>} */
    const byProtocol = new Map()
    for (const [label, v] of latest.protocols) {
      const m = /^(.*) (sent|received)$/.exec(label)
      if (m === null) continue
      const rate = Math.max(0, (v - (prev.protocols.get(label) ?? v)) / dt)
      const entry = byProtocol.get(m[1]) ?? { in: 0, out: 0 }
      entry[m[2] === 'sent' ? 'out' : 'in'] += rate
      byProtocol.set(m[1], entry)
    }
    const busiest = [...byProtocol].filter(([, r]) => r.in + r.out > 0).sort((x, y) => (y[1].in + y[1].out) - (x[1].in + x[1].out)).slice(0, 8)
    if (busiest.length > 0) {
      notes.push(h('div', { class: 'protocols' }, h('span', { class: 'muted small' }, 'Busiest protocols now:'),
        ...busiest.map(([p, r]) => h('span', { class: 'chip' }, h('span', { class: 'mono' }, p), ` ↓ ${perSecond(r.in)} ↑ ${perSecond(r.out)}`))))
    }
  }
  fill('throughput-note', ...notes.map(n => typeof n === 'string' ? h('p', { class: 'hint' }, n) : n))
}

/** @param {any[]} peers */
function drawPeers (peers) {
  $('peer-count').textContent = String(peers.length)
  if (peers.length === 0) { fill('peers', empty('No peer connected. Add one with `shoal invite` here and `shoal init --join` there, or `shoal peers connect ADDR`.')); return }
  const prev = peerTotals
  peerTotals = new Map(peers.map(p => [p.id, { t: Date.now(), bytesIn: p.bytesIn, bytesOut: p.bytesOut }]))
  /** @param {any} p @param {'bytesIn' | 'bytesOut'} k */
  const traffic = (p, k) => {
    if (typeof p[k] !== 'number') return '–'
    const before = prev.get(p.id)
    const rate = before !== undefined && typeof before[k] === 'number' && p[k] >= before[k] ? (p[k] - before[k]) / Math.max(1, (Date.now() - before.t) / 1000) : undefined
    return h('span', null, rate === undefined ? '' : h('b', null, perSecond(rate)), h('span', { class: 'muted' }, ` ${bytes(p[k])}`))
  }
  fill('peers', table(['Peer', 'Address', 'Direction', 'Latency', 'Connected', 'Streams', 'In', 'Out'], peers.map(p => [
    h('span', { class: 'peer-id mono', title: p.id }, p.id),
    h('span', { class: 'mono small' }, ((p.addresses ?? [])[0] ?? '–').replace(/\/p2p\/[^/]+$/, '')),
    p.direction,
    p.latencyMs === undefined ? badge('no answer', 'warn') : `${p.latencyMs} ms`,
    p.connectedSince === undefined ? '–' : duration(Date.now() - p.connectedSince),
    String(p.streams ?? '–'),
    traffic(p, 'bytesIn'),
    traffic(p, 'bytesOut')
  ]), 'peers'))
}
/** @type {Map<string, { t: number, bytesIn?: number, bytesOut?: number }>} */
let peerTotals = new Map()

const STRIPE_LABEL = { pending: 'pending', placing: 'being placed', healthy: 'healthy', 'at-risk': 'at risk', degraded: 'degraded', lost: 'lost' }

/** Badge of each pin state: its words and colour. */
const PIN_STATE = {
  lost: ['lost', 'bad'],
  degraded: ['degraded', 'bad'],
  'at-risk': ['at risk', 'warn'],
  failed: ['not read', 'bad'],
  unknown: ['not checked yet', 'muted'],
  pending: ['placing', 'warn'],
  healthy: ['healthy', 'ok'],
  'not-coded': ['not coded', 'muted']
}

/** The pins answer last drawn (as JSON): the table, up to 50 × 1,024 cells, is rebuilt only when it changes. */
let pinsDrawn = ''

/** @param {any} answer */
function drawPins (answer) {
  const key = JSON.stringify(answer)
  if (key === pinsDrawn) return
  pinsDrawn = key
  const pins = answer.pins
  $('pin-count').textContent = answer.total > pins.length ? `${pins.length} of ${answer.total}` : String(answer.total)
  if (pins.length === 0) { fill('pins', empty('No pinned file. Files added with a policy (the default for `shoal add`) appear here.')); return }
  const note = []
  if (answer.unknown > 0) note.push(`${answer.unknown} of ${answer.total} not checked yet`)
  if (answer.checking === true) note.push('a check of their health is under way')
  fill('pins', ...(note.length > 0 ? [h('p', { class: 'small muted', id: 'pins-note' }, `${note.join('; ')}. Worst first.`)] : []),
    table(['File', 'Size', 'Policy', 'Stripes', 'Health'], pins.map((/** @type {any} */ p) => {
      const s = p.status
      const [word, kind] = PIN_STATE[/** @type {keyof PIN_STATE} */ (p.state)] ?? [String(p.state), 'muted']
      /** @type {Array<Node | string>} */
      const state = [badge(word, kind)]
      if (p.error !== undefined) state.push(` ${p.error.name}: ${p.error.message}`)
      else if (s !== undefined && s.stripeCount === 0) state.push(s.waiting !== undefined ? ` ${s.waiting}` : p.cold !== undefined ? ' cold copy only' : '')
      else if (s !== undefined) {
        const { healthy, atRisk, degraded, lost } = s.summary
        state.push(` ${healthy} healthy, ${atRisk} at risk, ${degraded} degraded, ${lost} lost of ${s.stripeCount} stripes`)
      }
      if (s?.placing !== undefined) state.push(h('div', { class: 'small' }, `placing: ${s.placing.pushed} of ${s.placing.total} shards pushed`))
      else if (s?.pending === true && s.waiting === undefined) state.push(h('div', { class: 'small muted' }, 'placement not final yet'))
      if (p.checkedAt !== undefined) state.push(h('div', { class: 'small muted', title: new Date(p.checkedAt).toISOString() }, `checked at ${new Date(p.checkedAt).toLocaleTimeString()}`))
      const cells = s === undefined || s.stripeCount === 0
        ? h('span', { class: 'muted' }, '–')
        : h('div', { class: 'stripes', title: `${s.stripeCount} stripes${s.k !== undefined ? `, ${s.k}+${s.m} shards each` : ''}` },
          ...s.stripes.map((/** @type {keyof STRIPE_LABEL} */ st, /** @type {number} */ i) => h('i', { class: `st ${st}`, title: `stripe ${i}: ${STRIPE_LABEL[st] ?? st}` })),
          s.stripeCount > s.stripes.length ? h('span', { class: 'small muted' }, ` +${s.stripeCount - s.stripes.length}`) : null)
      return [h('span', { class: 'path mono', title: p.cid }, p.path), bytes(p.size), h('span', { class: 'mono' }, p.policy), cells, h('div', null, ...state)]
    }), 'pins'))
}

/** @param {any} status @param {any} pins @param {ReturnType<typeof parseMetrics> | undefined} metrics */
function drawDurability (status, pins, metrics) {
  const d = status?.durability
  const parts = []
  if (d === undefined) parts.push(h('p', null, badge('not checked yet', 'muted'), ' The repair pass runs every durability.checkInterval; `shoal repair --wait` runs one now.'))
  else {
    const worst = d.lost > 0 || d.degraded > 0 ? 'bad' : d.atRisk > 0 ? 'warn' : 'ok'
    parts.push(h('p', null, badge(worst === 'ok' ? 'all healthy' : worst === 'warn' ? 'at risk' : 'needs repair', worst), ` last repair pass ${ago(d.at)}`))
    parts.push(h('div', { class: 'tiles' },
      tile(d.healthy, 'healthy', 'ok'), tile(d.atRisk, 'at risk', 'warn'), tile(d.degraded, 'degraded', 'bad'), tile(d.lost, 'lost', 'bad')))
    parts.push(h('p', { class: 'small muted' }, `${d.stripes} stripes of ${d.manifests} placed file${d.manifests === 1 ? '' : 's'} (coded, or copies for replicas:N)`,
      d.uncoded > 0 ? ` · ${d.uncoded} file${d.uncoded === 1 ? '' : 's'} waiting for live nodes` : '',
      d.waiting > 0 ? ` · ${d.waiting} shard${d.waiting === 1 ? '' : 's'} on nodes away (grace period)` : ''))
  }
  const activity = []
  for (const p of pins?.pins ?? []) {
    if (p.status?.placing !== undefined) activity.push(h('li', null, 'placing ', h('span', { class: 'mono' }, p.path), `: ${p.status.placing.pushed} of ${p.status.placing.total} shards`))
    else if (p.status?.waiting !== undefined) activity.push(h('li', null, 'waiting ', h('span', { class: 'mono' }, p.path), `: ${p.status.waiting}`))
  }
  if (activity.length === 0) activity.push(h('li', { class: 'muted' }, 'no placement under way'))
  if (metrics !== undefined) {
    const scrub = sum(metrics, 'shoal_durability_last_scrub_timestamp_seconds')
    activity.push(h('li', null, scrub !== undefined && scrub > 0 ? `last scrub ${ago(scrub * 1000)}` : h('span', { class: 'muted' }, 'no scrub yet (weekly)')))
    const placed = sum(metrics, 'shoal_durability_shards_placed_total')
    const repaired = sum(metrics, 'shoal_durability_shards_repaired_total')
    if (placed !== undefined || repaired !== undefined) activity.push(h('li', null, `since start: ${placed ?? '–'} shard${placed === 1 ? '' : 's'} placed, ${repaired ?? '–'} repaired`))
  }
  parts.push(h('ul', { class: 'plain activity' }, ...activity))
  fill('durability', ...parts)
}

/** @param {number} n @param {string} label @param {string} kind */
function tile (n, label, kind) {
  return h('div', { class: `tile ${n > 0 ? kind : 'zero'}` }, h('b', null, String(n)), h('span', null, label))
}

/** @param {any} status @param {any[] | undefined} conflicts */
function drawNamespace (status, conflicts) {
  const ns = status?.namespace
  const parts = [h('dl', { class: 'compact' },
    h('dt', null, 'Log entries'), h('dd', null, ns === undefined ? '–' : `${ns.entries} (${ns.pruned} compacted)`),
    h('dt', null, 'Heads'), h('dd', null, ns === undefined ? '–' : String(ns.heads.length)),
    h('dt', null, 'Refused'), h('dd', null, ns === undefined ? '–' : `${ns.rejected} invalid, ${ns.untrusted} untrusted`))]
  if (conflicts === undefined) parts.push(empty('Conflicts could not be read.'))
  else if (conflicts.length === 0) parts.push(h('p', null, badge('no conflicts', 'ok')))
  else {
    parts.push(h('p', null, badge(`${conflicts.length} conflict cop${conflicts.length === 1 ? 'y' : 'ies'}`, 'warn')))
    parts.push(table(['Path', 'Copy', 'By', 'When'], conflicts.slice(0, 20).map(c => [
      h('span', { class: 'mono' }, c.path), h('span', { class: 'mono' }, c.copy), peer(c.author), ago(c.time)]), 'conflicts'))
  }
  fill('namespace', ...parts)
}

const OP_WORD = { put: 'wrote', mkdir: 'made folder', del: 'removed' }

/** @param {any[]} changes @param {string | undefined} self */
function drawChanges (changes, self) {
  if (changes.length === 0) { fill('changes', empty('No change in the namespace yet.')); return }
  fill('changes', table(['When', 'By', 'What'], changes.map(c => [
    h('span', { title: new Date(c.time).toISOString() }, ago(c.time)),
    c.author === self ? badge('this node', 'muted') : peer(c.author),
    h('span', null, ...c.changes.flatMap((/** @type {any} */ op, /** @type {number} */ i) => [
      i > 0 ? ', ' : '',
      `${OP_WORD[/** @type {keyof OP_WORD} */ (op.op)] ?? op.op} `,
      h('span', { class: 'mono' }, op.path),
      op.size !== undefined ? h('span', { class: 'muted' }, ` (${bytes(op.size)})`) : ''
    ]), c.ops > c.changes.length ? h('span', { class: 'muted' }, ` and ${c.ops - c.changes.length} more`) : '')
  ]), 'changes'))
}

// ------------------------------------------------------------------ control

/** What each card is drawn from: a source that failed this round marks its card "not current". */
const CARD_SOURCES = {
  node: ['status', 'node'],
  disk: ['status', 'node'],
  durability: ['status', 'pins', 'metrics'],
  charts: ['metrics'],
  peers: ['peers'],
  pins: ['pins'],
  namespace: ['status', 'conflicts'],
  changes: ['changes']
}
/** The elements the cards draw into, emptied at logout. */
const CARD_IDS = ['node', 'disk', 'durability', 'charts', 'throughput-note', 'peers', 'pins', 'namespace', 'changes']

/** @typedef {'status' | 'node' | 'peers' | 'metrics' | 'conflicts' | 'changes' | 'pins'} Source */

/** The last value read of each source, and when. @type {Partial<Record<Source, { value: any, at: number }>>} */
let latest = {}
/** When every source asked last answered (ms), or undefined. @type {number | undefined} */
let lastComplete
let round = 0
/** The polling's generation: a login starts one, a logout ends it; a refresh of an ended one draws nothing. */
let generation = 0
/** @type {AbortController | undefined} */
let inflight
/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer
/** The generation whose next refresh waits for the tab to be shown. @type {number | undefined} */
let paused

/** @param {number} t ms since the epoch */
const clockTime = t => new Date(t).toLocaleTimeString()

/**
 * Read everything once and draw it, unless generation `gen` ended meanwhile.
 *
 * @param {number} gen @param {AbortSignal} signal
 */
async function refresh (gen, signal) {
  const slow = round % PINS_EVERY === 0
  round++
  /** @type {Array<[Source, string, 'json' | 'text']>} */
  const asked = [
    ['status', '/api/v0/status', 'json'], ['node', '/api/v0/status/node', 'json'], ['peers', '/api/v0/status/peers', 'json'],
    ['metrics', '/metrics', 'text'], ['changes', '/api/v0/status/changes?limit=15', 'json']
  ]
  if (slow) asked.push(['conflicts', '/api/v0/conflicts', 'json'], ['pins', '/api/v0/status/pins?limit=50', 'json'])
  const answers = await Promise.all(asked.map(async ([, path, as]) => await attempt(path, as, signal)))
  if (gen !== generation) return
  /** @type {Array<[Source, ApiError]>} */
  const failed = []
  const now = Date.now()
  asked.forEach(([source], i) => {
    const a = answers[i]
    if (a.error !== undefined) failed.push([source, a.error])
    else latest[source] = { value: a.value, at: now }
  })
  if (failed.some(([, e]) => e.status === 401)) { logout('The node no longer takes this token (was the repo re-initialised?). Enter the current one.'); return }
  // a figure that failed keeps its last value; graphs and rates move only with fresh ones
  const fresh = new Set(asked.map(([source]) => source).filter(source => !failed.some(([f]) => f === source)))
  const v = (/** @type {Source} */ k) => latest[k]?.value
  const metrics = v('metrics') === undefined ? undefined : parseMetrics(v('metrics'))
  if (metrics !== undefined && fresh.has('metrics')) {
    samples.push(sample(metrics, v('peers')))
    if (samples.length > MAX_SAMPLES) samples.shift()
  }
  drawNode(v('status'), v('node'))
  drawDisk(v('status'), v('node'))
  drawCharts()
  if (fresh.has('peers')) drawPeers(v('peers'))
  if (fresh.has('pins')) drawPins(v('pins'))
  drawDurability(v('status'), v('pins'), metrics)
  drawNamespace(v('status'), v('conflicts'))
  if (fresh.has('changes')) drawChanges(v('changes'), v('status')?.id)
  if (failed.length === 0) lastComplete = now
  // a daemon that is down answers nothing: the figures not asked this round are not current either
  const down = isDown(failed, asked.length)
  markStale(new Set(down ? Object.values(CARD_SOURCES).flat() : failed.map(([source]) => source)))
  drawBanner(failed, down)
}

/**
 * True when every read was refused at the connection: the daemon is not running.
 *
 * @param {Array<[Source, ApiError]>} failed @param {number} asked
 */
function isDown (failed, asked) {
  return failed.length === asked && failed.every(([, e]) => e.name === 'NetworkError')
}

/**
 * Mark the cards drawn from a source that failed: their figures are the last ones read.
 *
 * @param {Set<string>} failed
 */
function markStale (failed) {
  for (const [id, sources] of Object.entries(CARD_SOURCES)) {
    const card = $(id).closest('section')
    if (card === null) continue
    const bad = sources.filter(s => failed.has(/** @type {Source} */ (s)))
    card.classList.toggle('stale', bad.length > 0)
    const when = bad.map(s => latest[/** @type {Source} */ (s)]?.at).filter(t => t !== undefined)
    if (bad.length > 0) card.title = when.length > 0 ? `not current: figures read at ${clockTime(Math.min(...when))}` : 'not read yet'
    else card.removeAttribute('title')
  }
  const updated = $('updated')
  updated.classList.toggle('stale-text', failed.size > 0)
  updated.textContent = lastComplete === undefined ? '' : failed.size > 0 ? `last complete read ${clockTime(lastComplete)}` : `updated ${clockTime(lastComplete)}`
}

/**
 * Say what failed: a daemon that is down (every read refused), one that
 * does not answer in time, or some figures only.
 *
 * @param {Array<[Source, ApiError]>} failed @param {boolean} down
 */
function drawBanner (failed, down) {
  const banner = $('banner')
  banner.hidden = failed.length === 0
  banner.dataset.kind = ''
  if (failed.length === 0) { banner.textContent = ''; return }
  const since = lastComplete === undefined ? '' : ` The figures shown are from ${clockTime(lastComplete)} or before.`
  const timedOut = failed.filter(([, e]) => e.name === 'TimeoutError').map(([s]) => s)
  if (down) {
    banner.dataset.kind = 'down'
    banner.textContent = `The node does not answer at ${location.host}: is its daemon running?${since}`
  } else if (timedOut.length > 0) {
    banner.dataset.kind = 'timeout'
    banner.textContent = `The node is running but did not answer in ${ANSWER_TIMEOUT_MS / 1000} s (${timedOut.join(', ')}): it is busy or stuck.${since}`
  } else {
    const [source, e] = failed[0]
    banner.dataset.kind = 'partial'
    banner.textContent = `Some figures could not be read (${failed.map(([s]) => s).join(', ')}): ${source}: ${e.name}: ${e.message}`
  }
}

/** One refresh of generation `gen`, then the next one after {@link REFRESH_MS}; waits while the tab is hidden. @param {number} gen */
function tick (gen) {
  if (gen !== generation) return
  if (document.hidden) { paused = gen; return }
  const controller = new AbortController()
  inflight = controller
  refresh(gen, controller.signal).catch(err => {
    if (gen !== generation) return
    const banner = $('banner')
    banner.hidden = false
    banner.textContent = `The page failed to draw: ${String(err?.message ?? err)}`
  }).finally(() => {
    if (inflight === controller) inflight = undefined
    if (gen === generation) timer = setTimeout(() => { tick(gen) }, REFRESH_MS)
  })
}

/** End the current generation: no refresh runs or draws after this. */
function stopPolling () {
  generation++
  clearTimeout(timer)
  timer = undefined
  inflight?.abort()
  inflight = undefined
  paused = undefined
}

/** Start a new generation of refreshes, the first one now. */
function startPolling () {
  stopPolling()
  tick(generation)
}

/** Forget every figure of the node: the cards, the graphs' samples, the peers' totals. */
function clearFigures () {
  latest = {}
  lastComplete = undefined
  round = 0
  samples.length = 0
  peerTotals = new Map()
  pinsDrawn = ''
  for (const id of CARD_IDS) fill(id)
  $('peer-count').textContent = ''
  $('pin-count').textContent = ''
  for (const card of $('dashboard').querySelectorAll('section.stale')) { card.classList.remove('stale'); card.removeAttribute('title') }
}

/** @param {string} [why] shown on the login form */
function logout (why) {
  sessionStorage.removeItem(TOKEN_KEY)
  stopPolling()
  clearFigures()
  showLogin(why)
}

/** @param {string} [why] */
function showLogin (why) {
  $('dashboard').hidden = true
  $('logout').hidden = true
  $('node-badge').replaceChildren()
  $('updated').textContent = ''
  $('banner').hidden = true
  $('login').hidden = false
  const error = $('login-error')
  error.hidden = why === undefined
  error.textContent = why ?? ''
  $('token').focus()
}

function showDashboard () {
  $('login').hidden = true
  $('dashboard').hidden = false
  $('logout').hidden = false
  startPolling()
}

/**
 * Check a token against the node and keep it when the node takes it. What
 * was shown before (another token's node) is forgotten first.
 *
 * @param {string} candidate
 */
async function login (candidate) {
  stopPolling()
  clearFigures()
  const gen = generation
  sessionStorage.setItem(TOKEN_KEY, candidate)
  try {
    await api('/health')
  } catch (err) {
    if (gen !== generation) return
    const e = /** @type {ApiError} */ (err)
    sessionStorage.removeItem(TOKEN_KEY)
    showLogin(e.status === 401
      ? 'Wrong token: the node refused it. Copy it again from <repo>/api.token, or open the link that "shoal ui" prints.'
      : e.message)
    return
  }
  if (gen === generation) showDashboard()
}

/**
 * The token of a `#token=…` fragment (as `shoal ui` prints it), which is
 * then replaced in the address bar and this tab's history entry.
 *
 * @returns {string | null}
 */
function tokenFromFragment () {
  const found = new URLSearchParams(location.hash.slice(1)).get('token')
  if (found !== null) history.replaceState(null, '', location.pathname + location.search)
  return found
}

function start () {
  $('login-form').addEventListener('submit', event => {
    event.preventDefault()
    const input = /** @type {HTMLInputElement} */ ($('token'))
    const value = input.value.trim()
    input.value = ''
    if (value === '') { showLogin('Enter the token first.'); return }
    void login(value)
  })
  $('logout').addEventListener('click', () => { logout() })
  // a `shoal ui` link pasted into this open tab changes only the fragment
  window.addEventListener('hashchange', () => {
    const fromUrl = tokenFromFragment()
    if (fromUrl !== null && fromUrl !== '') void login(fromUrl)
  })
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && paused !== undefined && paused === generation) {
      paused = undefined
      tick(generation)
    }
  })
  const candidate = tokenFromFragment() ?? token()
  if (candidate !== null && candidate !== '') void login(candidate)
  else showLogin()
}

start()
