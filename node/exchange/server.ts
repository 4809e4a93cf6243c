import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { matchesCID } from '../blocks/verify.js'
import { MAX_ERROR_MESSAGE, MAX_MESSAGE_BYTES, decodeRequest, encodeResponseFrame, type BlockExchangeResponse, type BlockRequest } from '../../protocol/block-exchange.js'
import { writeFrame } from './channel.js'
import { toError } from './errors.js'
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
  /** Streams closed because a request was malformed. */
  invalidRequests: number
  /** Streams refused because the peer had too many open. */
  streamsRefused: number
  /** Streams that ended with an error. */
  streamFailures: number
}

/** Server settings. */
export interface ServerInit {
  /** Streams one peer may have open at once (over all its connections). */
  maxStreamsPerPeer: number
  /** Requests a client may have outstanding: bounds the server's read buffer. */
  maxWindow: number
  /** Accept `put` requests. */
  acceptPuts: boolean
}

/**
 * The serving side: answers `want`, `have` and `put` from the local block
 * store, one request at a time per stream, writing each frame with
 * {@link writeFrame} (which waits for 'drain' whenever `send()` returns false). Requests are read only
 * after the previous one is answered, so a client that keeps its window
 * costs the server at most `maxWindow` frames of buffer; one that overruns
 * it gets its stream reset by the bounded reader. A malformed request gets an
 * `error` response and the stream is closed; nothing is written to the store.
 */
export class BlockServer {
  private readonly open = new Map<string, number>()
  private readonly streams = new Set<Stream>()

  constructor (
    private readonly blockstore: BlockStore,
    private readonly init: ServerInit,
    private readonly stats: ServerStats,
    private readonly log: Logger
  ) {}

  /** The libp2p stream handler. */
  async handle (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const count = this.open.get(peer) ?? 0
    if (count >= this.init.maxStreamsPerPeer) {
      this.stats.streamsRefused++
      stream.abort(new Error('too many block exchange streams'))
      return
    }
    this.open.set(peer, count + 1)
    this.streams.add(stream)
    const lp = lpStream(stream, {
      maxDataLength: MAX_MESSAGE_BYTES,
      maxBufferSize: (this.init.maxWindow + 1) * MAX_MESSAGE_BYTES
    })
    try {
      await this.serve(stream, lp)
    } catch (err) {
      const e = toError(err)
      this.stats.streamFailures++
      this.log.debug({ peer, err: e.message }, 'block exchange stream failed')
      stream.abort(e)
    } finally {
      this.streams.delete(stream)
      const left = (this.open.get(peer) ?? 1) - 1
      if (left <= 0) this.open.delete(peer)
      else this.open.set(peer, left)
    }
  }

  /** Abort every stream being served. */
  stop (): void {
    for (const stream of this.streams) stream.abort(new Error('block exchange stopped'))
    this.streams.clear()
  }

  private async serve (stream: Stream, lp: LengthPrefixedStream<Stream>): Promise<void> {
    while (true) {
      let frame: Uint8Array
      try {
        frame = (await lp.read()).subarray()
      } catch (err) {
        // the client closed its side between requests: a clean end
        if (stream.remoteWriteStatus !== 'writable' && stream.status === 'open') {
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
        await writeFrame(stream, encodeResponseFrame({ v: 1, type: 'error', id: 0, message }))
        await stream.close()
        return
      }
      // a block at a time (and the next one being read): a 32-block want
      // never holds 32 blocks here
      for await (const response of this.answer(request)) {
        await writeFrame(stream, encodeResponseFrame(response))
        if (response.type === 'block') this.stats.blocksSent++
      }
    }
  }

  private async * answer (request: BlockRequest): AsyncGenerator<BlockExchangeResponse> {
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
        if (!this.init.acceptPuts) {
          yield { v: 1, type: 'error', id, message: 'puts are not accepted' }
        } else if (!matchesCID(request.cid, request.data)) {
          yield { v: 1, type: 'error', id, message: `block ${request.cid.toString()} does not match its hash` }
        } else {
          await this.blockstore.put(request.cid, request.data, { verify: true })
          this.stats.blocksStored++
          yield { v: 1, type: 'ack', id }
        }
      }
    }
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
