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
 * its path, sending them at half the window made it faster in eight
 * alternated pairs of eight piped into `sha256sum` (0.6–12 %), and the sender
 * used less CPU (docs/benchmarks.md,
 * "yamux window updates at half the window").
 *
 * The mechanism: `YamuxStream.prototype.sendWindowUpdate` is wrapped, when
 * this module loads (before any connection): a call that would give back
 * less than half the receive window, in a state whose update carries no
 * flag, returns at once; every other call is the library's own (the window
 * grows as it decides, a paused stream sends none, the SYN of an opening
 * stream and the ACK of an accepted one go out at once). The window now
 * grows at most once per update sent (doubled when half a window arrived
 * within four round trips of the last one). The sender always keeps at least half a
 * window of credit, so it never waits on an update that is held back. The
 * yamux spec leaves when to send updates to the receiver, so peers of any
 * implementation are unaffected.
 *
 * When it applies: every stream of every host `createHost` builds (host.ts
 * imports this module). A version of the library whose stream no longer has
 * the fields this relies on is left as it is (`yamuxWindowPatched` false,
 * checked by test/node/net/yamux-window.test.ts).
 *
 * @module
 */
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/** The fields of a yamux stream (private to the library) that tell what its next update gives back. */
interface WindowedStream {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
  sendWindowUpdate: () => void
}

const proto = YamuxStream.prototype as unknown as WindowedStream & { __shoalHalfWindow?: boolean }

// the library's method still keeps the fields read below
const fits = typeof proto.sendWindowUpdate === 'function' && /recvWindowCapacity/.test(String(proto.sendWindowUpdate))

/** States whose window update the library sends with a flag (SYN, ACK), or not at all (paused): always left to it. */
const LEFT_TO_LIBRARY = new Set([StreamState.Init, StreamState.SYNReceived, StreamState.Paused])

if (fits && proto.__shoalHalfWindow !== true) {
  const sendWindowUpdate = proto.sendWindowUpdate
  proto.sendWindowUpdate = function (this: WindowedStream): void {
    // the one change: no update for less than half the window
    if (!LEFT_TO_LIBRARY.has(this.state) && this.recvWindow - this.recvWindowCapacity < this.recvWindow / 2) return
    sendWindowUpdate.call(this)
  }
  proto.__shoalHalfWindow = true
}

/** True when the streams send window updates at half the window (the library was found and patched). */
export const yamuxWindowPatched = proto.__shoalHalfWindow === true
