/**
 * Pin health for the status page (`GET /api/v0/status/pins`), bounded in
 * cost and in time.
 *
 * Why: a pin's health asks every connected peer which shards it holds
 * (durability/view.ts). Asked afresh on every poll for every listed pin, a
 * page left open keeps the swarm busy, and one peer that takes streams but
 * never answers makes each pin wait for its deadline, so the request
 * outlives the page's patience.
 *
 * How: one {@link PinHealthBoard} per node keeps the last health found for
 * each pin. A request starts a check job when none runs and the last one
 * ended at least {@link RESULT_TTL_MS} ago (concurrent requests share the
 * job), waits for it at most {@link ANSWER_BUDGET_MS}, then answers with
 * what is known: a pin not reached yet is `unknown`. A job checks at most
 * {@link PINS_PER_JOB} pins, the least recently checked first, a few at a
 * time, each within {@link PIN_DEADLINE_MS}, the whole within
 * {@link JOB_DEADLINE_MS}: over several jobs every pin gets its turn.
 * Pins are listed worst first (lost, degraded, at risk, failed, unknown,
 * pending, healthy, not coded), so a bad one is never cut off by `limit`.
 *
 * @module
 */
import { MAX_STRIPES_LISTED, type PinHealthInfo, type PinState, type PinsAnswer } from './status-types.js'
import { onePer } from './one-per.js'
import type { ShoalComponents } from '../node.js'
import type { PinInfo } from '../files/index.js'
import type { PinStatus } from '../durability/index.js'

/** How long a finished job's results answer before a request starts the next one (ms). */
export const RESULT_TTL_MS = 30_000
/** Longest a request waits for a running job before answering with what is known (ms); below the page's 20 s. */
export const ANSWER_BUDGET_MS = 5_000
/** Deadline of one pin's health (ms). */
export const PIN_DEADLINE_MS = 8_000
/** Deadline of one whole job (ms): pins it has not reached by then wait for the next job. */
export const JOB_DEADLINE_MS = 60_000
/** Pins one job checks at most. */
export const PINS_PER_JOB = 200
/** Pins checked at once. */
const CONCURRENCY = 4

/** Rank of each state in the listing: worst first. */
const RANK: Record<PinState, number> = { lost: 0, degraded: 1, 'at-risk': 2, failed: 3, unknown: 4, pending: 5, healthy: 6, 'not-coded': 7 }

/** What a check found for one pin (the namespace's pin fields are added when answering). */
type Checked = Pick<PinHealthInfo, 'state' | 'status' | 'error'> & { checkedAt: number }

/** The part of the node a board reads. */
export type PinHealthComponents = Pick<ShoalComponents, 'files'>

/** The last health found for each pin of one node, and the job that refreshes it. */
export class PinHealthBoard {
  /** `path` → what the last check of the file with `cid` found. */
  private readonly results = new Map<string, { cid: string, checked: Checked }>()
  private job?: Promise<void>
  /** When the last job ended (performance.now()). */
  private ended?: number

  constructor (private readonly components: PinHealthComponents) {}

  /**
   * The first `limit` pins, worst first, with their last known health;
   * waits for a running check at most {@link ANSWER_BUDGET_MS} (or until
   * `signal` aborts).
   */
  async answer (limit: number, signal: AbortSignal, budgetMs = ANSWER_BUDGET_MS): Promise<PinsAnswer> {
    const all = await this.components.files.pinLs()
    const due = this.job === undefined && (this.ended === undefined || performance.now() - this.ended >= RESULT_TTL_MS)
    if (due) this.startJob(all)
    if (this.job !== undefined) await within(this.job, budgetMs, signal)
    const pins = all.map(pin => this.known(pin))
    pins.sort((a, b) => RANK[a.state] - RANK[b.state] || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    return {
      total: all.length,
      unknown: pins.filter(p => p.state === 'unknown').length,
      checking: this.job !== undefined,
      pins: pins.slice(0, limit)
    }
  }

  /** A pin with what the last check found of it, or `unknown`. */
  private known (pin: PinInfo): PinHealthInfo {
    const found = this.results.get(pin.path)
    if (found === undefined || found.cid !== pin.cid) return { ...pin, state: 'unknown' }
    return { ...pin, ...found.checked }
  }

  private startJob (all: PinInfo[]): void {
    const live = new Set(all.map(p => p.path))
    for (const path of this.results.keys()) if (!live.has(path)) this.results.delete(path)
    // never checked first, then the longest unchecked
    const order = all.map(pin => {
      const last = this.results.get(pin.path)
      return { pin, at: last?.cid === pin.cid ? last.checked.checkedAt : 0 }
    }).sort((a, b) => a.at - b.at).slice(0, PINS_PER_JOB).map(x => x.pin)
    const deadline = AbortSignal.timeout(JOB_DEADLINE_MS)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < order.length && !deadline.aborted) {
        const pin = order[next++]
        const checked = await this.check(pin, deadline)
        if (!deadline.aborted || checked.error === undefined) this.results.set(pin.path, { cid: pin.cid, checked })
      }
    }
    this.job = Promise.all(Array.from({ length: Math.min(CONCURRENCY, order.length) }, worker)).then(() => {
      this.job = undefined
      this.ended = performance.now()
    })
  }

  /** The health of one pin; never throws (a failure is its `error`). */
  private async check (pin: PinInfo, deadline: AbortSignal): Promise<Checked> {
    try {
      const s = await this.components.files.pinStatus(pin.path, { blocks: false, signal: AbortSignal.any([deadline, AbortSignal.timeout(PIN_DEADLINE_MS)]) })
      return { state: stateOf(s), status: brief(s), checkedAt: Date.now() }
    } catch (err: any) {
      return { state: 'failed', error: { name: typeof err?.name === 'string' ? err.name : 'Error', message: String(err?.message ?? err) }, checkedAt: Date.now() }
    }
  }
}

/** Where a pin stands, from its status (the page shows a placement under way as pending). */
function stateOf (s: PinStatus): PinState {
  return s.state === 'placing' ? 'pending' : s.state
}

/** `pin status` with stripes shortened to their state (pending, placing, or their health). */
function brief (s: PinStatus): NonNullable<PinHealthInfo['status']> {
  return {
    k: s.k,
    m: s.m,
    summary: s.summary,
    stripeCount: s.stripes.length,
    stripes: s.stripes.slice(0, MAX_STRIPES_LISTED).map(st => st.state),
    peersAsked: s.peersAsked.length,
    pending: s.pending,
    waiting: s.waiting,
    placing: s.placing
  }
}

/** Resolve when `work` settles, `ms` pass or `signal` aborts, whichever is first. */
async function within (work: Promise<void>, ms: number, signal: AbortSignal): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  let onAbort: (() => void) | undefined
  try {
    await new Promise<void>(resolve => {
      timer = setTimeout(resolve, ms)
      onAbort = resolve
      signal.addEventListener('abort', onAbort, { once: true })
      if (signal.aborted) resolve()
      work.then(resolve, resolve)
    })
  } finally {
    clearTimeout(timer)
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

/** The one board of a node (made on first use). */
export const pinHealthBoardOf = onePer((components: PinHealthComponents) => new PinHealthBoard(components))
