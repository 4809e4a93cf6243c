/**
 * yamux window updates at half the window (node/net/yamux-window.ts), on two
 * real hosts on 127.0.0.1 over pnet + noise + yamux, as nodes run them: a
 * bulk stream arrives whole with one update per several data frames (the
 * library alone sends one per frame), and a reader that stops now and then
 * still gets every byte (credit held back never stalls the sender).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import type { Stream } from '@libp2p/interface'
import { createHost } from '../../../node/net/host.js'
import { yamuxWindowPatched } from '../../../node/net/yamux-window.js'
import { defer, type CleanupContext } from '../../helpers/temp.js'

const PROTOCOL = '/shoal-test/bulk/1.0.0'
const MiB = 1024 * 1024

interface Counted { dataFrames: number, updates: number }

/** Count, for every yamux stream of this process until the test ends, data frames received and credit updates sent. */
function countFrames (t: CleanupContext): Counted {
  const counted: Counted = { dataFrames: 0, updates: 0 }
  const proto = YamuxStream.prototype as unknown as { handleData: (frame: unknown) => void, sendWindowUpdate: () => void, recvWindowCapacity: number }
  const { handleData, sendWindowUpdate } = proto
  proto.handleData = function (this: typeof proto, frame: unknown) { counted.dataFrames++; handleData.call(this, frame) }
  proto.sendWindowUpdate = function (this: typeof proto) {
    const before = this.recvWindowCapacity
    sendWindowUpdate.call(this)
    if (this.recvWindowCapacity !== before) counted.updates++
  }
  defer(t, async () => { proto.handleData = handleData; proto.sendWindowUpdate = sendWindowUpdate })
  return counted
}

/** Two hosts of one private swarm, `reader` handling PROTOCOL with `read`, dialled by `writer`. */
async function pair (t: CleanupContext, read: (stream: Stream) => Promise<void>): Promise<Stream> {
  const swarmKey = randomBytes(32)
  const reader = await createHost({ privateKey: await generateKeyPair('Ed25519'), swarmKey })
  defer(t, async () => { await reader.stop() })
  const writer = await createHost({ privateKey: await generateKeyPair('Ed25519'), swarmKey })
  defer(t, async () => { await writer.stop() })
  await reader.handle(PROTOCOL, (stream) => { void read(stream) })
  return await writer.dialProtocol(reader.getMultiaddrs()[0], PROTOCOL)
}

/**
 * Send `bytes` in messages of `piece` bytes, honouring the stream's
 * back-pressure, then close it. With `apart`, each message waits for the
 * next turn of the event loop, so that it goes out as a data frame of its
 * own (queued messages are sent together, as one frame).
 */
async function send (stream: Stream, bytes: Uint8Array, piece: number, apart = false): Promise<void> {
  for (let at = 0; at < bytes.byteLength; at += piece) {
    if (!stream.send(bytes.subarray(at, at + piece))) await stream.onDrain()
    if (apart) await new Promise(resolve => setImmediate(resolve))
  }
  await stream.close()
}

/** Read `stream` to its end (pausing `pauseMs` after each MiB when given): its bytes' sha-256 and count. */
function receive (pauseMs = 0): { read: (stream: Stream) => Promise<void>, done: Promise<{ sha: string, bytes: number }> } {
  let settle: (r: { sha: string, bytes: number }) => void = () => {}
  let fail: (err: unknown) => void = () => {}
  const done = new Promise<{ sha: string, bytes: number }>((resolve, reject) => { settle = resolve; fail = reject })
  const read = async (stream: Stream): Promise<void> => {
    try {
      const hash = createHash('sha256')
      let bytes = 0
      let nextPause = MiB
      for await (const chunk of stream) {
        for (const buf of chunk instanceof Uint8Array ? [chunk] : chunk) { hash.update(buf); bytes += buf.byteLength }
        if (pauseMs > 0 && bytes >= nextPause) { nextPause += MiB; await sleep(pauseMs) }
      }
      await stream.close()
      settle({ sha: hash.digest('hex'), bytes })
    } catch (err) {
      fail(err)
    }
  }
  return { read, done }
}

describe('yamux window updates at half the window', () => {
  it('is applied', () => {
    assert.equal(yamuxWindowPatched, true)
  })

  it('a 32 MiB stream arrives byte-identical with one credit update per several data frames', { timeout: 60_000 }, async (t) => {
    const counted = countFrames(t)
    const bytes = randomBytes(32 * MiB)
    const { read, done } = receive()
    const stream = await pair(t, read)
    // messages of 64 KiB, a data frame each
    await send(stream, bytes, 64 * 1024, true)
    const got = await done
    assert.equal(got.bytes, bytes.byteLength)
    assert.equal(got.sha, createHash('sha256').update(bytes).digest('hex'))
    t.diagnostic(`${counted.dataFrames} data frames, ${counted.updates} credit updates`)
    assert.ok(counted.dataFrames >= 512, `${counted.dataFrames} data frames`)
    assert.ok(counted.updates >= 1, 'credit was given back')
    // the library alone sends one update per data frame
    assert.ok(counted.updates * 4 <= counted.dataFrames, `${counted.updates} updates for ${counted.dataFrames} data frames`)
  })

  it('a reader that stops after every MiB still gets every byte, sent in small and large messages', { timeout: 60_000 }, async (t) => {
    for (const piece of [16 * 1024, 3 * MiB]) {
      const bytes = randomBytes(12 * MiB)
      const { read, done } = receive(25)
      const stream = await pair(t, read)
      await send(stream, bytes, piece)
      const got = await done
      assert.equal(got.bytes, bytes.byteLength, `messages of ${piece} bytes`)
      assert.equal(got.sha, createHash('sha256').update(bytes).digest('hex'), `messages of ${piece} bytes`)
    }
  })
})
