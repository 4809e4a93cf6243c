import { setTimeout as sleep } from 'node:timers/promises'
import { localState } from '../reads/local-state.js'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { matchesCIDOffThread } from '../blocks/verify.js'
import { MAX_ERROR_MESSAGE, MAX_MESSAGE_BYTES, decodeRequest, encodeResponseFrame, type BlockExchangeResponse, type BlockRequest } from '../../protocol/block-exchange.js'
import { writeFrame } from './channel.js'
import { toError } from './errors.js'
import { PeerLimiter } from '../net/peer-limiter.js'
import { PeerStreams } from '../net/peer-streams.js'
import type { PutPolicy } from './put-policy.js'
import type { BlockStore } from '../blocks/index.js'
import type { Logger } from '../logger.js'
import type { Connection, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** Counters the server side updates. */
export interface ServerStats {
  /** `block` responses written. */
  blocksSent: number
  /** Blocks stored from verified `put`s. */
  blocksStored: number
  /** `put`s refused because this node did not agree to hold the block (nothing written). */
  putsRefused: number
  /** Requests that waited for their peer's request rate. */
  requestsDelayed: number
  /** Blocks whose sending waited for their peer's byte rate. */
  bytesDelayed: number
  /** Streams closed because a request was malformed. */
  invalidRequests: number
  /** Streams refused because the peer had too many open. */
  streamsRefused: number
  /** Streams that ended with an error. */
  streamFailures: number
}

/** What the server is built from. */
export interface ServerComponents {
  blockstore: BlockStore
  /** Which pushed blocks may be stored. */
  putPolicy: PutPolicy
  stats: ServerStats
  logger: Logger
}

/** Per-peer rates of the server (see docs/limits.md). */
export interface ServerRates {
  /** Requests per second per peer; a `want` or `have` costs one per CID. */
  requestsPerSecond: number
  /** Request burst per peer. */
  requestBurst: number
  /** Block bytes served per second per peer. */
  bytesPerSecond: number
  /** Byte burst per peer. */
  byteBurst: number
}

/** Server settings. */
export interface ServerInit extends ServerRates {
  /** Streams one peer may have open at once (over all its connections). */
  maxStreamsPerPeer: number
  /** Requests a client may have outstanding: bounds the server's read buffer. */
  maxWindow: number
  /** The clock of the rate limits (tests). @default Date.now */
  now?: () => number
}

/** A stable prefix of the message of a refused `put`. */
export const PUT_REFUSED = 'put refused'

/**
 * The serving side: answers `want`, `have` and `put` from the local block
 * store, one request at a time per stream, writing each frame with
 * {@link writeFrame} (which waits for 'drain' whenever `send()` returns false). Requests are read only
 * after the previous one is answered (a put: once stored; its ack follows its
 * commit), so a client that keeps its window costs the server at most
 * `maxWindow` frames of buffer; one that overruns it gets its stream reset by
 * the bounded reader, and puts past its window are stored only as far as its
 * holds allow (the {@link PutPolicy}). A malformed request gets an
 * `error` response and the stream is closed; nothing is written to the store.
 *
 * A `put` is stored only when the {@link PutPolicy} accepts it (this node
 * agreed to hold that block for that peer); any other gets an `error`
 * response starting with {@link PUT_REFUSED} and nothing is written. A
 * stored put is acknowledged once committed (fsynced), by a commit shared
 * with the puts stored meanwhile (the store's commits are shared by the
 * callers that wait at once: node/blocks/group-commit.ts); the stream's next
 * requests are read while it runs, and its acks are written between other
 * answers as their commits end. Each
 * peer's requests and served bytes go through token buckets: a peer above
 * its rate waits (its next request is not read meanwhile, so its own window
 * fills and it slows down); other peers' streams are served in between.
 */
export class BlockServer {
  private readonly open: PeerStreams
  private readonly streams = new Set<Stream>()
  private readonly blockstore: BlockStore
  private readonly policy: PutPolicy
  private readonly stats: ServerStats
  private readonly log: Logger
  private readonly requests: PeerLimiter
  private readonly bytes: PeerLimiter

  constructor (components: ServerComponents, private readonly init: ServerInit) {
    this.blockstore = components.blockstore
    this.policy = components.putPolicy
    this.stats = components.stats
    this.log = components.logger
    this.open = new PeerStreams(init.maxStreamsPerPeer)
    this.requests = new PeerLimiter({ rate: init.requestsPerSecond, burst: init.requestBurst, now: init.now })
    this.bytes = new PeerLimiter({ rate: init.bytesPerSecond, burst: init.byteBurst, now: init.now })
  }

  /** The libp2p stream handler. */
  async handle (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    if (!this.open.enter(peer)) {
      this.stats.streamsRefused++
      stream.abort(new Error('too many block exchange streams'))
      return
    }
    this.streams.add(stream)
    const lp = lpStream(stream, {
      maxDataLength: MAX_MESSAGE_BYTES,
      maxBufferSize: (this.init.maxWindow + 1) * MAX_MESSAGE_BYTES
    })
    try {
      await this.serve(peer, stream, lp)
    } catch (err) {
      const e = toError(err)
      this.stats.streamFailures++
      this.log.debug({ peer, err: e.message }, 'block exchange stream failed')
      stream.abort(e)
    } finally {
      this.streams.delete(stream)
      this.open.leave(peer)
    }
  }

  /** Abort every stream being served. */
  stop (): void {
    for (const stream of this.streams) stream.abort(new Error('block exchange stopped'))
    this.streams.clear()
  }

  private async serve (peer: string, stream: Stream, lp: LengthPrefixedStream<Stream>): Promise<void> {
    // frames go out one at a time, in order: a put's ack is written when its commit is done, between other answers
    let writes: Promise<void> = Promise.resolve()
    const send = async (response: BlockExchangeResponse): Promise<void> => {
      writes = writes.then(async () => { await writeFrame(stream, encodeResponseFrame(response)) })
      await writes
    }
    /** Acks waiting for their commit: written before the stream closes. */
    const acks = new Set<Promise<void>>()
    while (true) {
      let frame: Uint8Array
      try {
        frame = (await lp.read()).subarray()
      } catch (err) {
        // the client closed its side between requests: a clean end, once every ack owed is written
        if (stream.remoteWriteStatus !== 'writable' && stream.status === 'open') {
          await Promise.allSettled(acks)
          await stream.close()
          return
        }
        throw err
      }
      let request: BlockRequest
      try {
        request = decodeRequest(frame)
      } catch (err) {
        this.stats.invalidRequests++
        const message = toError(err).message.slice(0, MAX_ERROR_MESSAGE)
        await Promise.allSettled(acks)
        await send({ v: 1, type: 'error', id: 0, message })
        await stream.close()
        return
      }
      const wait = this.requests.take(peer, request.type === 'put' ? 1 : request.cids.length)
      if (wait > 0) {
        this.stats.requestsDelayed++
        await sleep(wait)
      }
      // a block at a time (and the next one being read): a 32-block want
      // never holds 32 blocks here
      for await (const response of this.answer(peer, request)) {
        if (response.type === 'ack') {
          // a put is acknowledged once durable, by a commit it shares with the puts stored meanwhile
          // (the store's commits are shared: node/blocks/group-commit.ts): the next requests are read while it runs
          const ack = this.committed(response).then(send)
          acks.add(ack)
          void ack.finally(() => acks.delete(ack)).catch(() => {})
          continue
        }
        if (response.type === 'block') {
          const delay = this.bytes.take(peer, response.data.byteLength)
          if (delay > 0) {
            this.stats.bytesDelayed++
            await sleep(delay)
          }
        }
        await send(response)
        if (response.type === 'block') this.stats.blocksSent++
      }
    }
  }

  /** `ack` once what was put before is durable; an `error` naming why when the commit failed (the block is not kept). */
  private async committed (ack: Extract<BlockExchangeResponse, { type: 'ack' }>): Promise<BlockExchangeResponse> {
    try {
      await this.blockstore.commit()
      return ack
    } catch (err) {
      this.log.warn({ err: toError(err).message }, 'a pushed block could not be committed')
      return { v: 1, type: 'error', id: ack.id, message: `block not stored: ${toError(err).message}`.slice(0, MAX_ERROR_MESSAGE) }
    }
  }

  private async * answer (peer: string, request: BlockRequest): AsyncGenerator<BlockExchangeResponse> {
    const { id } = request
    switch (request.type) {
      case 'want': {
        // the next block is read from the store while this one is written:
        // at most two blocks of a want are held at once
        let next = this.tryGet(request.cids[0])
        for (let i = 0; i < request.cids.length; i++) {
          const cid = request.cids[i]
          const data = await next
          if (i + 1 < request.cids.length) next = this.tryGet(request.cids[i + 1])
          yield data === undefined ? { v: 1, type: 'dont-have', id, cid } : { v: 1, type: 'block', id, cid, data }
        }
        return
      }
      case 'have': {
        const haves: boolean[] = []
        for (const cid of request.cids) haves.push(await this.blockstore.has(cid))
        yield { v: 1, type: 'haves', id, haves }
        return
      }
      case 'put': {
        const cid = request.cid
        const accepted = this.policy.accepts(peer, cid, request.data.byteLength)
        // a block held here already is acknowledged whoever pushes it (nothing is written): a placing node that
        // does not read the `held` of a hold's answer pushes what the holder named held, and is not refused for it
        const here = accepted ? undefined : await this.present(cid)
        const intact = (accepted || here === true) && await matchesCIDOffThread(cid, request.data)
        if (!accepted && !intact) {
          this.stats.putsRefused++
          yield { v: 1, type: 'error', id, message: `${PUT_REFUSED}: block ${cid.toString()} of ${request.data.byteLength} bytes was not agreed to in a hold or reserve from this peer` }
        } else if (!intact) {
          yield { v: 1, type: 'error', id, message: `block ${cid.toString()} does not match its hash` }
        } else {
          // held already (e.g. read earlier): acknowledged, nothing written — unless the copy here fails its
          // check (damage no read had found yet): that read marks it, and the good bytes pushed replace it
          if (!(here ?? await this.present(cid)) || await this.replacesBadCopy(cid)) {
            // hash-checked just above (matchesCIDOffThread): not hashed a second time
            await this.blockstore.put(cid, request.data)
            this.stats.blocksStored++
          }
          this.policy.used(peer, cid)
          yield { v: 1, type: 'ack', id }
        }
      }
    }
  }

  /** Whether `cid` is here; told first, so a collection under way keeps a copy here the peer means this node to hold. */
  private async present (cid: CID): Promise<boolean> {
    this.blockstore.touch(cid)
    return await this.blockstore.has(cid)
  }

  /** Whether the copy of `cid` here fails its check (that read marks it: docs/blockstore.md), so the pushed bytes replace it. */
  private async replacesBadCopy (cid: CID): Promise<boolean> {
    const state = await localState(this.blockstore, cid)
    if (state === 'corrupt') this.log.warn({ cid: cid.toString() }, 'a copy here failed its check: replaced by the bytes a peer pushed')
    return state !== 'good'
  }

  private async tryGet (cid: CID): Promise<Uint8Array | undefined> {
    try {
      return await this.blockstore.getBytes(cid)
    } catch (err: any) {
      if (err?.name !== 'NotFoundError') this.log.warn({ cid: cid.toString(), err: err?.message }, 'cannot serve block')
      return undefined
    }
  }
}
