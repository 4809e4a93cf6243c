/**
 * yamux window updates sent once half the receive window is used, as
 * go-yamux and rust-yamux send them, instead of after every data frame.
 *
 * Why: `@chainsafe/libp2p-yamux` 8 gives the sender its credit back after
 * every data frame it receives: one window-update frame each, which the
 * receiver encrypts twice (noise, then pnet) and writes with a syscall of its
 * own, and the sender reads, decrypts and handles, waking its event loop. A
 * remote `cat` of 512 MiB received 1,314 data frames and sent as many
 * updates. On 2 cores, where the cat is bound by the CPU of every process on
 * its path, sending them at half the window made it 3.5–7.8 % faster in four
 * alternated pairs, and the sender used less CPU (docs/benchmarks.md,
 * "yamux window updates at half the window").
 *
 * The mechanism: `YamuxStream.prototype.sendWindowUpdate` is replaced, when
 * this module loads (before any connection), by the same logic with one
 * more rule: an update that carries no flag is sent only once the credit to
 * give back is at least half the receive window. The window still grows as
 * before (doubled when a window's worth arrives within four round trips, up
 * to the stream's maximum), a paused stream still sends none, and every
 * update that carries a flag (SYN, ACK, FIN, RST) goes out at once. The
 * sender always keeps at least half a window of credit, so it never waits
 * on an update that is held back. The yamux spec leaves when to send updates
 * to the receiver, so peers of any implementation are unaffected.
 *
 * When it applies: every stream of every host `createHost` builds (host.ts
 * imports this module). A version of the library whose stream no longer has
 * the fields this relies on is left as it is (`yamuxWindowPatched` false,
 * checked by test/node/net/yamux-window.test.ts).
 *
 * @module
 */
import { YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/** The fields of a yamux stream that its window updates read and write. */
interface WindowedStream {
  state: number
  recvWindow: number
  recvWindowCapacity: number
  maxStreamWindowSize: number
  epochStart: number
  streamId: number
  getRTT: () => number
  getSendFlags: () => number
  sendFrame: (header: { type: number, flag: number, streamID: number, length: number }) => boolean
  sendWindowUpdate: () => void
}

/** `StreamState.Paused` of the library's stream.ts. */
const PAUSED = 5
/** `FrameType.WindowUpdate` of the library's frame.ts. */
const WINDOW_UPDATE = 1

const proto = YamuxStream.prototype as unknown as WindowedStream & { __shoalHalfWindow?: boolean }

// the library's own method, whose logic is kept below, and its name for the paused state
const fits = typeof proto.sendWindowUpdate === 'function' && typeof proto.getSendFlags === 'function' &&
  /StreamState\.Paused/.test(String(proto.sendWindowUpdate)) && /recvWindowCapacity/.test(String(proto.sendWindowUpdate))

if (fits && proto.__shoalHalfWindow !== true) {
  proto.sendWindowUpdate = function (this: WindowedStream): void {
    if (this.state === PAUSED) {
      // no credit while paused: the epoch starts again when it resumes
      this.epochStart = Date.now()
      return
    }
    const flags = this.getSendFlags()
    const now = Date.now()
    const rtt = this.getRTT()
    // a window's worth within four round trips: the window doubles, up to its maximum
    if (flags === 0 && rtt > -1 && (now - this.epochStart) <= rtt * 4) {
      this.recvWindow = Math.min(this.recvWindow * 2, this.maxStreamWindowSize)
    }
    const delta = this.recvWindow - this.recvWindowCapacity
    // the one change: no update for less than half a window, unless a flag must go out
    if (flags === 0 && delta < this.recvWindow / 2) return
    this.recvWindowCapacity = this.recvWindow
    this.epochStart = now
    this.sendFrame({ type: WINDOW_UPDATE, flag: flags, streamID: this.streamId, length: delta })
  }
  proto.__shoalHalfWindow = true
}

/** True when the streams send window updates at half the window (the library was found and patched). */
export const yamuxWindowPatched = proto.__shoalHalfWindow === true
