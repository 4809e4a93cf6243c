import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { AbortedError } from '../errors.js'
import { onAbort, raceAbort } from '../abort.js'
import { BLOCKS_PROTOCOL, MAX_MESSAGE_BYTES, MAX_WANT, decodeResponse, encodeRequestFrame, type BlockExchangeResponse, type BlockRequest } from '../../protocol/block-exchange.js'
import { PeerUnavailableError, RequestTimeoutError, toError } from './errors.js'
import type { Logger } from '../logger.js'
import type { ShoalLibp2p } from '../net/host.js'
import type { PeerId, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** A request without its id (the channel numbers requests). */
export type OutgoingRequest = BlockRequest extends infer R ? R extends BlockRequest ? Omit<R, 'id'> : never : never

/** Counters a channel reports into (shared by every channel of a service). */
export interface ChannelStats {
  /** Highest number of responses ever outstanding on one channel. */
  peakInFlight: number
  /** `want` messages sent (each asks for 1..32 blocks). */
  wantsSent: number
  /** Streams that died with an error (reset, timeout, peer gone). */
  streamFailures: number
  /** Responses that were malformed or answered no request. */
  invalidResponses: number
  /** Streams reset because every response still expected on them had been given up by its caller (also in `streamFailures` when the peer had sent nothing during the grace). */
  streamsGivenUp: number
}

/**
 * How long a stream whose every expected response was given up by its caller
 * is kept before it is reset (ms): a live peer's answers drain it well within
 * (its wants cost a millisecond or two each), so a reader that closes with
 * read-ahead in flight does not cost a healthy stream; a stalled peer's
 * stream is reset after this, not after the 15 s request timeout, and if not
 * one byte came in that second, counted as the peer's failure.
 */
export const GIVE_UP_MS = 1000

/** A counting semaphore whose waiters can be aborted. */
class Slots {
  private used = 0
  private readonly waiters: Array<{ resolve: () => void, reject: (err: Error) => void }> = []

  constructor (private readonly size: number) {}

  get inUse (): number { return this.used }

  /** Requests waiting for a slot. */
  get waiting (): number { return this.waiters.length }

  async acquire (signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) throw new AbortedError('request aborted')
    if (this.used < this.size) { this.used++; return }
    await new Promise<void>((resolve, reject) => {
      let unsubscribe: (() => void) | undefined
      const waiter = {
        resolve: () => { unsubscribe?.(); resolve() },
        reject
      }
      if (signal !== undefined) {
        unsubscribe = onAbort(signal, () => {
          const at = this.waiters.indexOf(waiter)
          if (at >= 0) this.waiters.splice(at, 1)
          reject(new AbortedError('request aborted'))
        })
      }
      this.waiters.push(waiter)
    })
  }

  /** Give a slot back (handing it straight to the next waiter, if any). */
  release (): void {
    const next = this.waiters.shift()
    if (next !== undefined) next.resolve()
    else this.used--
  }
}

interface Waiter {
  resolve: (response: BlockExchangeResponse) => void
  reject: (err: Error) => void
  /** Its caller gave up (aborted): its response, if it comes, goes nowhere. */
  abandoned?: true
}

/** A request written: one waiter per response still expected, in order. */
interface Pending {
  waiters: Waiter[]
  timer: ReturnType<typeof setTimeout>
}

/** A CID waiting (with its slot taken) to go out in the next `want`. */
interface QueuedWant extends Waiter {
  cid: CID
}

interface Open {
  stream: Stream
  lp: LengthPrefixedStream<Stream>
  /** When bytes last arrived on the stream (`performance.now()`): a peer sending nothing is stalled, one sending slowly is not. */
  heardAt: number
}

/**
 * The requester's side of the protocol towards one peer: one long-lived
 * stream, requests numbered and answered by id, and at most `window`
 * responses outstanding. A slot is taken per expected response before a
 * request is written and given back only when that response has been read off
 * the stream (or the stream died), so the bytes the peer may have sent that
 * we have not consumed are bounded by `window` responses, whatever the caller
 * does — this is the flow control yamux does not give us. A request whose
 * caller gave up keeps its slot until its response arrives, with two
 * exceptions that keep the bound: a want not sent yet leaves the queue and
 * frees its slot at once, and when every response still expected on the
 * stream has been given up for {@link GIVE_UP_MS}, the stream is reset and
 * every slot freed (nothing more can arrive on it). A stalled peer then holds
 * no slot of a read that closed (before, until the request timeout, 15 s);
 * if it sent nothing during that second it is counted as failed, as the
 * timeout would have counted it, and one still sending, only slow, is not.
 * A caller that gave up on a timeout of its own (an `AbortSignal` whose
 * reason is a `TimeoutError`, as `have`s carry) found the peer slow: its
 * request waits for its answer or the request timeout, which counts.
 *
 * Blocks asked for with {@link PeerChannel.want} in the same turn of the
 * event loop go out together, up to {@link MAX_WANT} CIDs per `want`.
 */
export class PeerChannel {
  /** The peer this channel talks to. */
  readonly peer: PeerId
  private readonly slots: Slots
  private readonly pending = new Map<number, Pending>()
  private queue: QueuedWant[] = []
  private flushScheduled = false
  private opening: Promise<Open> | undefined
  private current: Open | undefined
  private nextId = 1
  private closed = false
  /** Waiters of {@link pending} whose callers gave up. */
  private abandoned = 0
  /** Set while every response expected on the stream is given up: resets it when it fires ({@link resetIfAllGivenUp}). */
  private giveUpTimer: ReturnType<typeof setTimeout> | undefined

  constructor (
    private readonly libp2p: ShoalLibp2p,
    peer: PeerId,
    private readonly window: number,
    private readonly timeoutMs: number,
    private readonly stats: ChannelStats,
    private readonly log: Logger,
    private readonly onInvalid: (peer: PeerId) => void,
    /** Told of a peer's failure: once per stream that died (timeout, reset) with requests outstanding, however many; once per want a failed dial failed. */
    private readonly onFailure: (peer: PeerId) => void
  ) {
    this.peer = peer
    this.slots = new Slots(window)
  }

  /** Requests written whose responses have not been read yet. */
  get inFlight (): number { return this.slots.inUse }

  /** Nothing asked, waiting or being opened: closing it now fails no request. */
  get idle (): boolean {
    return this.slots.inUse === 0 && this.slots.waiting === 0 && this.opening === undefined && this.queue.length === 0 && this.pending.size === 0
  }

  /**
   * Send one request and wait for its response.
   *
   * @throws {PeerUnavailableError} when the peer cannot be dialled or its stream dies
   * @throws {RequestTimeoutError} when it does not answer within the timeout
   * @throws {AbortedError} when `signal` aborts
   */
  async request (message: OutgoingRequest, signal?: AbortSignal): Promise<BlockExchangeResponse> {
    if (this.closed) throw new PeerUnavailableError('block exchange stopped')
    await this.slots.acquire(signal)
    let open: Open
    try {
      open = await this.open(signal)
    } catch (err) {
      this.slots.release()
      throw err
    }
    let waiter: Waiter | undefined
    const response = new Promise<BlockExchangeResponse>((resolve, reject) => {
      waiter = { resolve, reject }
      this.send(open, message, [waiter])
    })
    response.catch(() => {})
    this.stats.peakInFlight = Math.max(this.stats.peakInFlight, this.slots.inUse)
    return await this.awaitResponse(response, waiter as Waiter, signal)
  }

  /**
   * Ask for one block: its `block` or `dont-have` response. Blocks asked for
   * in the same turn of the event loop share one `want` message.
   *
   * @throws {PeerUnavailableError} when the peer cannot be dialled or its stream dies
   * @throws {RequestTimeoutError} when it does not answer within the timeout
   * @throws {AbortedError} when `signal` aborts
   */
  async want (cid: CID, signal?: AbortSignal): Promise<BlockExchangeResponse> {
    if (this.closed) throw new PeerUnavailableError('block exchange stopped')
    await this.slots.acquire(signal)
    try {
      await this.open(signal)
    } catch (err) {
      this.slots.release()
      // a failed dial counts for every want it failed: a peer gone is soon left alone (and forgiven when it connects again)
      if (signal?.aborted !== true && !this.closed) this.onFailure(this.peer)
      throw err
    }
    let waiter: QueuedWant | undefined
    const response = new Promise<BlockExchangeResponse>((resolve, reject) => {
      waiter = { cid, resolve, reject }
      this.queue.push(waiter)
      if (!this.flushScheduled) {
        this.flushScheduled = true
        setImmediate(() => { this.flushWants() })
      }
    })
    response.catch(() => {})
    this.stats.peakInFlight = Math.max(this.stats.peakInFlight, this.slots.inUse)
    return await this.awaitResponse(response, waiter as QueuedWant, signal)
  }

  /**
   * `response`, or an AbortedError as soon as `signal` aborts; then its
   * waiter is given up ({@link giveUp}).
   */
  private async awaitResponse (response: Promise<BlockExchangeResponse>, waiter: Waiter, signal?: AbortSignal): Promise<BlockExchangeResponse> {
    if (signal === undefined) return await response
    // aborted already (while the slot or the stream was awaited), or later
    if (signal.aborted) this.giveUp(waiter, signal)
    const unsubscribe = onAbort(signal, () => { this.giveUp(waiter, signal) })
    try {
      return await raceAbort(response, signal)
    } finally {
      unsubscribe()
    }
  }

  /**
   * `waiter`'s caller gave up (`signal` aborted). A want not sent yet leaves
   * the queue and frees its slot. A request sent keeps its slot until its
   * response is read, unless every response still expected on the stream was
   * given up ({@link resetIfAllGivenUp}); one whose caller gave up on its own
   * timeout is still expected: the peer was slow, and its answer or the
   * request timeout (which counts against it) ends it.
   */
  private giveUp (waiter: Waiter, signal: AbortSignal): void {
    if (waiter.abandoned === true) return
    const queued = this.queue.indexOf(waiter as QueuedWant)
    if (queued >= 0) {
      this.queue.splice(queued, 1)
      this.slots.release()
      this.resetIfAllGivenUp()
      return
    }
    if ((signal.reason as Error | undefined)?.name === 'TimeoutError') return
    for (const pending of this.pending.values()) {
      if (!pending.waiters.includes(waiter)) continue
      waiter.abandoned = true
      this.abandoned++
      this.resetIfAllGivenUp()
      return
    }
  }

  /**
   * True when a stream is open, some response on it is expected, and every
   * one was given up by its caller: nothing queued for it, and no slot taken
   * beyond those responses (one more is a request about to be written on it).
   */
  private allGivenUp (): boolean {
    if (this.current === undefined || this.abandoned === 0 || this.queue.length > 0) return false
    let expected = 0
    for (const pending of this.pending.values()) expected += pending.waiters.length
    return expected === this.abandoned && this.slots.inUse === expected
  }

  /**
   * Reset the stream once every response still expected on it has been
   * given up for {@link GIVE_UP_MS}; a response read or a request written
   * meanwhile that ends that state stops the countdown.
   */
  private resetIfAllGivenUp (): void {
    if (!this.allGivenUp()) {
      clearTimeout(this.giveUpTimer)
      this.giveUpTimer = undefined
      return
    }
    if (this.giveUpTimer !== undefined) return
    const open = this.current as Open
    const armedAt = performance.now()
    this.giveUpTimer = setTimeout(() => {
      this.giveUpTimer = undefined
      if (this.current !== open || !this.allGivenUp()) return
      this.stats.streamsGivenUp++
      // not one byte in the whole second while answers were due: the peer is stalled, and counted so, as the
      // request timeout would have counted it later; one still sending is only slow, and not blamed
      const silent = open.heardAt < armedAt
      this.log.debug({ peer: this.peer.toString(), responses: this.abandoned, silent }, 'block exchange stream reset: every request on it was given up')
      if (silent) this.fail(open, new RequestTimeoutError(`peer ${this.peer.toString()} sent nothing for ${GIVE_UP_MS} ms while ${this.abandoned} answers were due, all given up`))
      else this.fail(open, new AbortedError('every request on the stream was given up'), { uncounted: true })
    }, GIVE_UP_MS)
    this.giveUpTimer.unref()
  }

  /** Send the queued CIDs, {@link MAX_WANT} per `want`. */
  private flushWants (): void {
    this.flushScheduled = false
    const queue = this.queue
    this.queue = []
    for (let i = 0; i < queue.length; i += MAX_WANT) {
      const batch = queue.slice(i, i + MAX_WANT)
      // a stream that died since these were queued fails them in send()
      const open = this.current
      if (open !== undefined) this.stats.wantsSent++
      this.send(open, { v: 1, type: 'want', cids: batch.map(w => w.cid) }, batch)
    }
  }

  /** Number and write one request whose responses go to `waiters`, in order. */
  private send (open: Open | undefined, message: OutgoingRequest, waiters: Waiter[]): void {
    if (open === undefined || this.current !== open) {
      // the stream died since it was opened for this request
      const err = new PeerUnavailableError(`stream to ${this.peer.toString()} closed`)
      for (const w of waiters) { this.slots.release(); w.reject(err) }
      return
    }
    const id = this.nextId++
    let frame: Uint8Array[]
    try {
      frame = encodeRequestFrame({ ...message, id } as BlockRequest)
    } catch (err) {
      // nothing was written (e.g. a put over the size limit)
      for (const w of waiters) { this.slots.release(); w.reject(toError(err)) }
      return
    }
    const timer = setTimeout(() => {
      this.fail(open, new RequestTimeoutError(`peer ${this.peer.toString()} did not answer within ${this.timeoutMs} ms`))
    }, this.timeoutMs)
    this.pending.set(id, { waiters, timer })
    if (this.giveUpTimer !== undefined) this.resetIfAllGivenUp()
    writeFrame(open.stream, frame).catch((err: unknown) => { this.fail(open, toError(err)) })
  }

  /** Close the stream (pending requests fail). */
  close (): void {
    this.closed = true
    if (this.current !== undefined) this.fail(this.current, new PeerUnavailableError('block exchange stopped'), { quiet: true })
  }

  private async open (signal?: AbortSignal): Promise<Open> {
    if (this.current !== undefined) return this.current
    // closed (its peer hung up on, or the exchange stopping) while a request waited for a slot: no new dial
    if (this.closed) throw new PeerUnavailableError('block exchange stopped')
    if (this.opening === undefined) {
      const opening = (async (): Promise<Open> => {
        try {
          const stream = await this.libp2p.dialProtocol(this.peer, BLOCKS_PROTOCOL, {
            signal: AbortSignal.timeout(this.timeoutMs)
          })
          const lp = lpStream(stream, {
            maxDataLength: MAX_MESSAGE_BYTES,
            // never more than `window` responses can be unread
            maxBufferSize: (this.window + 1) * MAX_MESSAGE_BYTES
          })
          const open: Open = { stream, lp, heardAt: performance.now() }
          stream.addEventListener('message', () => { open.heardAt = performance.now() })
          if (this.closed) {
            stream.abort(new PeerUnavailableError('block exchange stopped'))
            throw new PeerUnavailableError('block exchange stopped')
          }
          this.current = open
          void this.readLoop(open)
          return open
        } catch (err) {
          const e = toError(err)
          if (e instanceof PeerUnavailableError) throw e
          throw new PeerUnavailableError(`cannot open ${BLOCKS_PROTOCOL} to ${this.peer.toString()}: ${e.message}`, { cause: e })
        } finally {
          this.opening = undefined
        }
      })()
      this.opening = opening
    }
    return await raceAbort(this.opening, signal)
  }

  private async readLoop (open: Open): Promise<void> {
    try {
      while (this.current === open) {
        const frame = await open.lp.read()
        let response: BlockExchangeResponse
        try {
          response = decodeResponse(frame.subarray())
        } catch (err) {
          this.stats.invalidResponses++
          this.onInvalid(this.peer)
          throw err
        }
        const pending = this.pending.get(response.id)
        if (pending === undefined) {
          this.stats.invalidResponses++
          this.onInvalid(this.peer)
          throw new PeerUnavailableError(`peer ${this.peer.toString()} answered unknown request ${response.id}`)
        }
        const waiter = pending.waiters.shift() as Waiter
        if (pending.waiters.length === 0) {
          this.pending.delete(response.id)
          clearTimeout(pending.timer)
        } else {
          // the peer is making progress: the timeout counts from its last answer
          pending.timer.refresh()
        }
        this.slots.release()
        if (waiter.abandoned === true) this.abandoned--
        else waiter.resolve(response)
        if (this.abandoned > 0 || this.giveUpTimer !== undefined) this.resetIfAllGivenUp()
      }
    } catch (err) {
      this.fail(open, toError(err))
    }
  }

  /**
   * Fail every outstanding request and drop the stream: closed when `quiet`
   * (the exchange stopping), else reset; counted as the peer's failure
   * unless `quiet` or `uncounted` (every request on it given up).
   */
  private fail (open: Open, err: Error, { quiet = false, uncounted = false }: { quiet?: boolean, uncounted?: boolean } = {}): void {
    if (this.current !== open) return
    this.current = undefined
    this.abandoned = 0
    clearTimeout(this.giveUpTimer)
    this.giveUpTimer = undefined
    if (!quiet && !uncounted) {
      this.stats.streamFailures++
      this.log.debug({ peer: this.peer.toString(), err: err.message }, 'block exchange stream failed')
      // one failure of the peer, however many requests were outstanding (an idle stream that ends costs nothing)
      if (this.pending.size > 0 || this.queue.length > 0) this.onFailure(this.peer)
    }
    const gone = err instanceof RequestTimeoutError || err instanceof PeerUnavailableError
      ? err
      : new PeerUnavailableError(`stream to ${this.peer.toString()} failed: ${err.message}`, { cause: err })
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer)
      for (const waiter of pending.waiters) {
        this.slots.release()
        if (waiter.abandoned !== true) waiter.reject(gone)
      }
    }
    this.pending.clear()
    const queued = this.queue
    this.queue = []
    for (const waiter of queued) {
      this.slots.release()
      waiter.reject(gone)
    }
    if (open.stream.status === 'open') {
      if (quiet) open.stream.close().catch(() => { open.stream.abort(gone) })
      else open.stream.abort(gone)
    }
  }
}

/**
 * Write one frame given as parts (see `encodeRequestFrame`): `send()` only
 * appends to the stream's write buffer, so the parts go out contiguous, and
 * a block's bytes are not copied into one buffer first. Waits for 'drain'
 * when the stream asks for it, as lpStream's write does.
 */
export async function writeFrame (stream: Stream, parts: Uint8Array[]): Promise<void> {
  let writable = true
  for (const part of parts) writable = stream.send(part)
  if (!writable) await stream.onDrain()
}
