/**
 * What the daemon says when the swarm cannot listen where the config asks.
 *
 * Why: libp2p reports every address it could not listen on in one
 * `UnsupportedListenAddressesError` whose message spans lines, quotes each
 * socket error with its stack, and advises `transportManager.faultTolerance`
 * — a libp2p option no Shoal user can set. The likeliest case, the README's
 * first command on a machine where another node already holds port 4747,
 * then ended in a paragraph the user could not act on.
 *
 * How: the addresses and their socket error codes are read back from that
 * message (libp2p keeps no structured list: transport-manager.ts writes
 * `  <multiaddr>: <error message>` per address) and said in one line with the
 * setting that changes them. The libp2p error stays as the `cause`.
 *
 * @module
 */
import { ShoalError } from '../errors.js'

/** A listen address of the swarm is taken by another process. */
export class SwarmAddressInUseError extends ShoalError {
  override name = 'SwarmAddressInUseError'
}

/** The swarm cannot listen on an address for another reason (not this machine's, a port it may not bind…). */
export class SwarmListenError extends ShoalError {
  override name = 'SwarmListenError'
}

/** Socket errors a listen address can meet, and what each means to a user. */
const MEANINGS: Record<string, string> = {
  EADDRINUSE: 'already in use',
  EADDRNOTAVAIL: 'not an address of this machine',
  EACCES: 'a port this user may not bind (below 1024?)'
}

/** The addresses libp2p names in `message`, each with the socket error code it quotes, if any. */
function failedAddresses (message: string): Array<{ addr: string, code?: string }> {
  const failed: Array<{ addr: string, code?: string }> = []
  for (const line of message.split('\n')) {
    const m = /^\s+(\/\S+): (.*)$/.exec(line)
    if (m === null) continue
    failed.push({ addr: m[1], code: /\b(E[A-Z]{3,})\b/.exec(m[2])?.[1] })
  }
  return failed
}

/**
 * The error to report for `err`, thrown by libp2p's start: a
 * {@link SwarmAddressInUseError} or {@link SwarmListenError} naming the
 * addresses and the `shoal config set listen` that changes them, or `err`
 * itself when it is not a listen failure.
 */
export function swarmListenError (err: unknown): unknown {
  if (!(err instanceof Error) || err.name !== 'UnsupportedListenAddressesError') return err
  const failed = failedAddresses(err.message)
  if (failed.length === 0) return new SwarmListenError('the swarm cannot listen on its configured addresses: check `shoal config get listen`', { cause: err })
  const fix = 'set others with `shoal config set listen /ip4/0.0.0.0/tcp/PORT` (a JSON list for several)'
  const inUse = failed.filter(f => f.code === 'EADDRINUSE')
  if (inUse.length > 0) {
    return new SwarmAddressInUseError(`swarm listen address ${inUse.map(f => f.addr).join(', ')} is already in use (another Shoal or IPFS node on this machine?): ${fix}`, { cause: err })
  }
  const said = failed.map(f => `${f.addr} (${f.code === undefined ? 'refused' : MEANINGS[f.code] ?? f.code})`)
  return new SwarmListenError(`the swarm cannot listen on ${said.join(', ')}: ${fix}`, { cause: err })
}
