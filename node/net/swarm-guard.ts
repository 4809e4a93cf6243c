/**
 * The private swarm's connection protector (pnet), with a warning when a
 * node that does not hold the swarm key dials in.
 *
 * pnet encrypts every byte with the swarm key, and its cipher has no
 * authentication: a node with another key (a stranger, another swarm, a
 * member left on the key the swarm replaced) completes pnet's nonce
 * exchange, and what it sends next decrypts to noise, on which the
 * protocol negotiation fails. libp2p counts that failure in a metric and
 * logs it at debug level only, so a refused stranger left no line in the
 * node's log. Here, the first bytes that arrive through pnet are checked:
 * every libp2p node opens with multistream-select's header, so bytes that
 * decrypt to something else come from a peer with another key (or from a
 * client that is no libp2p node at all). When such a connection closes
 * without being upgraded, {@link SwarmGuardInit.onForeign} is called with the
 * remote address. A dial that is merely cut short (a member's abort, a port
 * scan that sends nothing) sends no such bytes and is not reported.
 *
 * How: the first decrypted bytes are read from the protected stream's
 * buffer when they came with pnet's nonce, else seen by wrapping its
 * `onData` (the method pnet's stream hands each decrypted chunk to), on that
 * instance only; nothing is consumed. Both are internals of
 * `@libp2p/pnet`'s stream: when they are not there, nothing is reported and
 * nothing else changes (test/node/net/swarm-guard.test.ts fails then).
 *
 * @module
 */
import { preSharedKey } from '@libp2p/pnet'
import { WarnLimit } from '../namespace/trust.js'
import type { ConnectionProtector, MessageStream, AbortOptions } from '@libp2p/interface'
import type { Logger } from '../logger.js'

/** What every libp2p connection sends first: multistream-select's header, `/multistream/1.0.0\n`, length-prefixed. */
const MSS_HEADER = new Uint8Array([19, ...new TextEncoder().encode('/multistream/1.0.0\n')])

/** Settings of {@link swarmGuard}. */
export interface SwarmGuardInit {
  /** The swarm key file's bytes (`/key/swarm/psk/1.0.0/…`), as pnet takes them. */
  psk: Uint8Array
  /** An inbound connection from `remoteAddr` whose peer does not hold the swarm key was refused. */
  onForeign: (remoteAddr: string) => void
}

/** Whether the first decrypted bytes of a connection can be the start of {@link MSS_HEADER}. */
export function startsLikeLibp2p (bytes: Uint8Array): boolean {
  const n = Math.min(bytes.byteLength, MSS_HEADER.byteLength)
  for (let i = 0; i < n; i++) if (bytes[i] !== MSS_HEADER[i]) return false
  return true
}

interface InboundConnection extends MessageStream {
  remoteAddr?: { toString: () => string }
  timeline: MessageStream['timeline'] & { upgraded?: number }
}

/** pnet (`@libp2p/pnet`) as libp2p's `connectionProtector`, reporting strangers that dial in: see the module doc. */
export function swarmGuard (init: SwarmGuardInit): () => ConnectionProtector {
  const pnet = preSharedKey({ psk: init.psk })
  return () => {
    const inner = pnet()
    return {
      async protect (connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
        const protectedStream = await inner.protect(connection, options)
        if (connection.direction === 'inbound') watch(connection as InboundConnection, protectedStream, init.onForeign)
        return protectedStream
      }
    }
  }
}

function watch (connection: InboundConnection, stream: MessageStream, onForeign: (remoteAddr: string) => void): void {
  type Bytes = Uint8Array | { byteLength: number, subarray: (a?: number, b?: number) => Uint8Array }
  const box = stream as unknown as { onData?: (data: Bytes) => void, readBuffer?: Bytes }
  const onData = box.onData
  if (typeof onData !== 'function') return // another pnet: nothing to watch, nothing broken
  let foreign = false
  const look = (data: Bytes): void => { foreign = !startsLikeLibp2p(data.subarray(0, MSS_HEADER.byteLength)) }
  // what came in the nonce's packet was decrypted as pnet's stream was made, and waits in its buffer
  const buffered = box.readBuffer
  if (buffered !== undefined && buffered.byteLength > 0) {
    look(buffered)
  } else {
    box.onData = function (this: unknown, data) {
      look(data)
      box.onData = onData // one look is enough
      onData.call(this, data)
    }
  }
  connection.addEventListener('close', () => {
    if (foreign && connection.timeline.upgraded === undefined) onForeign(connection.remoteAddr?.toString() ?? 'unknown')
  }, { once: true })
}

/**
 * What a node does with {@link SwarmGuardInit.onForeign}: a warning naming the
 * address, at most one a minute per remote IP (with how many were left out
 * since the last one) and lines about at most 100 IPs a minute, so a scanner
 * or a flood cannot fill the log.
 */
export function foreignConnectionWarnings (logger: Logger, clock: () => number = () => performance.now()): (remoteAddr: string) => void {
  const limit = new WarnLimit()
  return (remoteAddr: string) => {
    const ip = remoteAddr.split('/tcp/')[0]
    const suppressed = limit.take(ip, clock())
    if (suppressed === undefined) return
    logger.warn({ remote: remoteAddr, suppressed }, 'refused a connection from a node without this swarm\'s key (a stranger, a node of another swarm, a member left on a key the swarm replaced, or no Shoal node at all)')
  }
}
