/**
 * Progress bars for the CLI's long operations (`add`, `get`, `car import`,
 * `car export`, `repair`, `gc`).
 *
 * Why: a scrub of a large repo or a multi-gigabyte transfer runs for
 * minutes, and silence reads as a hang. Bars are for a person watching, so
 * they must never reach a script: they go to stderr, only when stderr is a
 * terminal, and never under `--json`. `--no-progress` turns them off;
 * `--progress` draws them even when stderr is not a terminal (as `git
 * --progress` does), e.g. for a log file: there as plain lines, a new one
 * only when it changed and at most every {@link PLAIN_LINE_MS}, and the
 * last state at the end.
 *
 * Mechanism: a {@link Meter} is one line, redrawn in place by
 * `cli-progress` on a terminal. When the
 * total is known (file size, files of a repair pass, blocks to sweep) it
 * shows a bar, percent, the count, the rate and an ETA; when it is not
 * (a scrub, a CAR export whose final size is unknown) a counter and its
 * rate. The rate is measured over the last few seconds, so it follows
 * changes in speed rather than averaging them away. {@link PhaseMeters}
 * gives a multi-part operation (reindex, scrub, repair) one line per part
 * in turn. A disabled meter does nothing, so callers never branch on it.
 *
 * Byte counts of transfers are measured here, on the client; progress of
 * work the daemon does comes from the API's progress stream (client.ts,
 * node/api/progress.ts).
 *
 * @module
 */
import { Transform } from 'node:stream'
import { SingleBar } from 'cli-progress'
import { formatBytes } from './output.js'

/** What decides whether bars are drawn: the global `--json`, and `--progress`/`--no-progress` (undefined: neither given). */
export interface ProgressChoice {
  json: boolean
  progress?: boolean
}

/** The stream bars go to (stderr): whether it is a terminal. */
export interface ProgressTarget {
  isTTY?: boolean
  write: (text: string) => boolean
}

/** How bars are drawn, when they are: redrawn in place on a terminal, else plain lines now and then (see {@link meter}). */
export interface ProgressMode {
  tty: boolean
}

/**
 * Whether to draw progress, and how: never under `--json` or with
 * `--no-progress`; on a terminal stderr by default; elsewhere only when
 * `--progress` asks for it. Undefined: no progress.
 */
export function progressMode (choice: ProgressChoice, target: ProgressTarget = process.stderr): ProgressMode | undefined {
  if (choice.json || choice.progress === false) return undefined
  if (target.isTTY === true) return { tty: true }
  return choice.progress === true ? { tty: false } : undefined
}

/** What a meter counts: bytes (shown in KiB, MiB, …) or items (shown with their noun, e.g. "files"). */
export type MeterUnit = { bytes: true } | { bytes: false, noun: string }

/** Options of {@link meter}. */
export interface MeterOptions {
  /** First word(s) of the line, e.g. `get photos` or `scrub`. */
  label: string
  /** What is counted; undefined for a step with no counts (the line shows the time it has taken). */
  unit?: MeterUnit
  /** The count at which the work is done; undefined when it is not known (a counter, no bar). */
  total?: number
}

/** One progress line. Every method is safe to call after `stop`. */
export interface Meter {
  /** The count done so far, an optional total learnt meanwhile, and a short note shown at the end of the line. */
  update: (done: number, more?: { total?: number, note?: string }) => void
  /** Add to the count. */
  add: (n: number) => void
  /** Draw the last state and remove the line (a terminal) or end it (elsewhere). */
  stop: () => void
}

/** A meter that draws nothing. */
export const NO_METER: Meter = { update () {}, add () {}, stop () {} }

/** History the rate is measured over (ms). */
const RATE_WINDOW_MS = 5_000

/** At most one sample is kept per this many ms, however fast the counts come. */
export const RATE_SAMPLE_MS = 200

/**
 * Counts per second over the last {@link RATE_WINDOW_MS}. Samples are kept
 * at most one per {@link RATE_SAMPLE_MS} (a transfer reports thousands of
 * chunks a second) and old ones are dropped by moving a head index, so a
 * push costs the same however many came before.
 */
export class RateWindow {
  private samples: Array<{ at: number, value: number }> = []
  private head = 0
  private latest?: { at: number, value: number }

  /** Record `value` at `at` (ms). */
  push (at: number, value: number): void {
    this.latest = { at, value }
    const newest = this.samples[this.samples.length - 1]
    if (newest === undefined || at - newest.at >= RATE_SAMPLE_MS) this.samples.push({ at, value })
    this.drop(at)
  }

  /**
   * Counts per second up to `now` (ms): from the oldest sample of the window
   * to the last value recorded, taken as still true at `now` — so the rate
   * falls while nothing comes (a stalled transfer). 0 until time has passed.
   */
  rate (now: number = this.latest?.at ?? 0): number {
    const last = this.latest
    if (last === undefined) return 0
    const end = Math.max(now, last.at)
    this.drop(end)
    const first = this.samples[this.head]
    if (first === undefined || end <= first.at) return 0
    return (last.value - first.value) * 1000 / (end - first.at)
  }

  /** Samples held (for tests: bounded however many were pushed). */
  get size (): number {
    return this.samples.length - this.head
  }

  /** Move the head past samples older than the window at `now`, keeping one at or before its start. */
  private drop (now: number): void {
    while (this.samples.length - this.head > 1 && now - this.samples[this.head + 1].at >= RATE_WINDOW_MS) this.head++
    // give the dropped slots back now and then (amortised: each sample is copied at most once)
    if (this.head > 64 && this.head * 2 > this.samples.length) {
      this.samples = this.samples.slice(this.head)
      this.head = 0
    }
  }
}

/** `1:02:03` or `2:03` for a number of seconds; `?` when unknown. */
export function formatDuration (seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?'
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const rest = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`
}

/** One line of a meter, from what it knows (exported for tests); `elapsed` in seconds. */
export function formatMeterLine (o: { label: string, unit?: MeterUnit, done: number, total?: number, rate: number, elapsed: number, bar?: string, note?: string }): string {
  if (o.unit === undefined) return [o.label, formatDuration(o.elapsed), ...(o.note !== undefined && o.note !== '' ? [o.note] : [])].join(' | ')
  const unit = o.unit
  const count = (n: number): string => unit.bytes ? formatBytes(n) : String(n)
  const perSecond = unit.bytes ? `${formatBytes(Math.round(o.rate))}/s` : `${o.rate.toFixed(o.rate < 10 ? 1 : 0)}/s`
  const noun = unit.bytes ? '' : ` ${unit.noun}`
  const parts: string[] = []
  if (o.total !== undefined) {
    const fraction = o.total > 0 ? Math.min(1, o.done / o.total) : 1
    const eta = o.rate > 0 ? formatDuration((o.total - o.done) / o.rate) : '?'
    parts.push(`${o.label} ${o.bar !== undefined ? `[${o.bar}] ` : ''}${Math.floor(fraction * 100)}%`, `${count(o.done)} / ${count(o.total)}${noun}`, perSecond, `ETA ${o.done >= o.total ? '0:00' : eta}`)
  } else {
    parts.push(`${o.label} ${count(o.done)}${noun}`, perSecond)
  }
  if (o.note !== undefined && o.note !== '') parts.push(o.note)
  return parts.join(' | ')
}

/** Bar width in characters. */
const BAR_SIZE = 30

/** Off a terminal (`--progress` into a file or pipe), a new line is written at most this often (ms). */
export const PLAIN_LINE_MS = 5_000

/**
 * A progress line on stderr for `options`, or {@link NO_METER} when
 * {@link progressMode} says no. On a terminal, `cli-progress` redraws it in
 * place; elsewhere a plain line is written by {@link Meter.update} only when
 * its text changed and {@link PLAIN_LINE_MS} passed since the last one,
 * plus the first and the last line — a log file gets a few lines a minute,
 * not one a second.
 */
export function meter (choice: ProgressChoice, options: MeterOptions, target: ProgressTarget = process.stderr): Meter {
  const mode = progressMode(choice, target)
  if (mode === undefined) return NO_METER
  let total = options.total
  let note: string | undefined
  let done = 0
  let stopped = false
  const rates = new RateWindow()
  const started = Date.now()
  const text = (): string => {
    const filled = total === undefined ? 0 : Math.round(BAR_SIZE * Math.min(1, total > 0 ? done / total : 1))
    const now = Date.now()
    return formatMeterLine({
      label: options.label,
      unit: options.unit,
      done,
      total,
      rate: rates.rate(now),
      elapsed: (now - started) / 1000,
      bar: total === undefined ? undefined : '='.repeat(filled) + ' '.repeat(BAR_SIZE - filled),
      note
    })
  }
  rates.push(started, 0)
  const draw = mode.tty ? terminalLine(target, text) : plainLines(target, text)
  const update = (value: number, more: { total?: number, note?: string } = {}): void => {
    if (stopped) return
    done = value
    if (more.total !== undefined) total = more.total
    if (more.note !== undefined) note = more.note
    rates.push(Date.now(), done)
    draw.update(done)
  }
  return {
    update,
    add (n) { update(done + n) },
    stop () {
      if (stopped) return
      stopped = true
      draw.stop()
    }
  }
}

/** How a meter's line reaches its stream. */
interface LineDrawer {
  update: (done: number) => void
  stop: () => void
}

/** On a terminal: one line redrawn in place by `cli-progress`, cleared at the end. */
function terminalLine (target: ProgressTarget, text: () => string): LineDrawer {
  const bar = new SingleBar({
    stream: target as NodeJS.WritableStream,
    fps: 5,
    clearOnComplete: true,
    // no hidden cursor: it would stay hidden after a Ctrl-C
    hideCursor: false,
    barsize: BAR_SIZE,
    format: text
  })
  bar.start(0, 0)
  return { update (done) { bar.update(done) }, stop () { bar.stop() } }
}

/** Off a terminal: plain lines, a new one only when the text changed and {@link PLAIN_LINE_MS} passed; the last state always ends it. */
function plainLines (target: ProgressTarget, text: () => string): LineDrawer {
  let written: string | undefined
  let writtenAt = 0
  const write = (force: boolean): void => {
    const now = Date.now()
    if (!force && now - writtenAt < PLAIN_LINE_MS) return
    const line = text()
    if (line === written) return
    target.write(line + '\n')
    written = line
    writtenAt = now
  }
  write(true)
  return { update () { write(false) }, stop () { write(true) } }
}

/**
 * One meter at a time for an operation in parts: `show(key, make)` returns
 * the meter of part `key`, stopping the previous part's when the part
 * changes.
 */
export class PhaseMeters {
  private key?: string
  private current: Meter = NO_METER

  /** The meter of part `key`, made by `make` when the part begins. */
  show (key: string, make: () => Meter): Meter {
    if (this.key !== key) {
      this.current.stop()
      this.key = key
      this.current = make()
    }
    return this.current
  }

  /** Stop the current part's meter. */
  stop (): void {
    this.current.stop()
    this.current = NO_METER
    this.key = undefined
  }
}

/** A pass-through stream that tells `onBytes` the size of every chunk going by (bytes of an upload or a download). */
export function byteCounter (onBytes: (n: number) => void): Transform {
  return new Transform({
    transform (chunk: Buffer, _enc, done) { onBytes(chunk.length); done(null, chunk) }
  })
}
