/**
 * Who signs namespace entries and how their signatures are checked: the
 * author is a libp2p peer id, whose Ed25519 public key is inside the id.
 *
 * @module
 */
import { createPrivateKey, sign } from 'node:crypto'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey, PublicKey } from '@libp2p/interface'

/** Signs entries as one author. */
export interface Signer {
  /** The author: a peer id string. */
  readonly id: string
  sign: (data: Uint8Array) => Promise<Uint8Array>
}

/** Checks a signature by `author` over `data`; false for a bad signature or an author that is not a key. */
export type Verifier = (author: string, data: Uint8Array, sig: Uint8Array) => Promise<boolean>

/**
 * A signer over a libp2p private key. An Ed25519 key is imported into
 * `node:crypto` once (the key's own `sign` re-imports it for every
 * signature, which cost more than the signature itself); Ed25519 signatures
 * are deterministic, so the bytes are the same either way.
 */
export function signerFromKey (key: PrivateKey): Signer {
  const id = peerIdFromPrivateKey(key).toString()
  if (key.type === 'Ed25519' && key.raw.byteLength === 64) {
    const keyObject = createPrivateKey({
      format: 'jwk',
      key: {
        kty: 'OKP',
        crv: 'Ed25519',
        d: Buffer.from(key.raw.subarray(0, 32)).toString('base64url'),
        x: Buffer.from(key.raw.subarray(32)).toString('base64url')
      }
    })
    return { id, sign: async (data) => new Uint8Array(sign(null, data, keyObject)) }
  }
  return { id, sign: async (data) => await key.sign(data) }
}

/** A verifier that reads the public key out of the author's peer id (cached per author). */
export function peerIdVerifier (): Verifier {
  const keys = new Map<string, PublicKey | null>()
  return async (author, data, sig) => {
    let key = keys.get(author)
    if (key === undefined) {
      try {
        key = peerIdFromString(author).publicKey ?? null
      } catch {
        key = null
      }
      if (keys.size > 10_000) keys.clear()
      keys.set(author, key)
    }
    if (key === null) return false
    try {
      return await key.verify(data, sig)
    } catch {
      return false
    }
  }
}
