/**
 * What a failed dial says about the peer, for the lines that tell the
 * operator: nobody listens there, the handshake was dropped (in a private
 * swarm: the two nodes do not hold the same swarm key, e.g. after the
 * swarm's key was changed), another node answers at the address (a peer
 * whose identity key was lost and made anew), or something else.
 *
 * @module
 */

/** Why a dial failed, as far as the error tells. */
export type DialFailureKind = 'refused' | 'handshake' | 'identity' | 'other'

/** Noise's error when the node that answers has another peer id than the one dialled. */
const IDENTITY = /does not match expected remote|UnexpectedPeer/i

/** The errors pnet gives for a peer with another swarm key (or none): the handshake is dropped or never completes. */
const HANDSHAKE = /ECONNRESET|EncryptionFailed|handshake|pre-shared|nonce|Unexpected end of input|multistream/i

/** The ways of a closed or absent listener. */
const REFUSED = /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND/

/** Sort a dial error (libp2p wraps errors in an `AggregateError` when a peer has several addresses). */
export function dialFailureKind (err: unknown): DialFailureKind {
  const text = describe(err)
  if (IDENTITY.test(text)) return 'identity'
  if (HANDSHAKE.test(text)) return 'handshake'
  if (REFUSED.test(text)) return 'refused'
  return 'other'
}

/** The words of the hint each kind gets in a warning or an error. */
export function dialFailureHint (kind: DialFailureKind): string {
  switch (kind) {
    case 'handshake': return 'the connection was dropped during the handshake: do both nodes use the same swarm key? (after the swarm key is changed, a node still on the old one can no longer connect)'
    case 'identity': return 'another node answers at that address (another peer id): the peer was made anew with a new identity key, or another node took its address (`shoal peers disconnect` the old id to stop dialling it, `shoal peers connect` the new address)'
    case 'refused': return 'nothing listens there: the peer is down, or it listens on tcp/0 and has a new port after each restart (give it a fixed port, or `shoal peers connect` its new address)'
    default: return 'the peer did not answer'
  }
}

function describe (err: unknown, depth = 0): string {
  if (err === null || typeof err !== 'object' || depth > 3) return String(err)
  const e = err as { name?: unknown, code?: unknown, message?: unknown, errors?: unknown, cause?: unknown }
  const parts = [e.name, e.code, e.message].filter(x => typeof x === 'string')
  if (Array.isArray(e.errors)) for (const inner of e.errors) parts.push(describe(inner, depth + 1))
  if (e.cause !== undefined) parts.push(describe(e.cause, depth + 1))
  return parts.join(' ')
}
