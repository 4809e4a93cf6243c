/**
 * Who signs namespace entries and how their signatures are checked: the
 * author is a libp2p peer id, whose Ed25519 public key is inside the id.
 *
 * @module
 */
import { KeyObject, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
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

/**
 * A verifier that reads the public key out of the author's peer id (cached
 * per author). An Ed25519 key is imported into `node:crypto` once, as for
 * signing: the libp2p key's own `verify` rebuilds the key object on every
 * call. Other key types verify through their libp2p key.
 */
export function peerIdVerifier (): Verifier {
  const keys = new Map<string, KeyObject | PublicKey | null>()
  return async (author, data, sig) => {
    let key = keys.get(author)
    if (key === undefined) {
      key = publicKeyOf(author)
      if (keys.size > 10_000) keys.clear()
      keys.set(author, key)
    }
    if (key === null) return false
    try {
      return key instanceof KeyObject ? verify(null, data, key, sig) : await key.verify(data, sig)
    } catch {
      return false
    }
  }
}

/** The public key inside a peer id: a node:crypto key for Ed25519, the libp2p key otherwise; null when the id holds none. */
function publicKeyOf (author: string): KeyObject | PublicKey | null {
  let key: PublicKey | undefined
  try {
    key = peerIdFromString(author).publicKey
  } catch {
    return null
  }
  if (key === undefined) return null
  if (key.type === 'Ed25519' && key.raw.byteLength === 32) {
    try {
      return createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(key.raw).toString('base64url') } })
    } catch {
      return key
    }
  }
  return key
}

/** One entry of a batch for {@link authenticateBatch}. */
export interface LinkedEntry {
  /** The entry's CID as a string: the hash of its bytes, computed by the receiver (never taken from a peer). */
  readonly key: string
  readonly author: string
  readonly seq: number
  /** The CIDs (as strings) of the entries it names as parents: its hash links, covered by its signature. */
  readonly parents: readonly string[]
}

/** What {@link authenticateBatch} does besides checking. */
export interface AuthenticateOptions {
  /**
   * Most parent links followed over the whole batch; once spent, the
   * remaining entries are verified one by one (a batch built to make the
   * walk costly gets no further than individual checks).
   *
   * @default 64 per entry of the batch
   */
  maxLinks?: number
}

/** What {@link authenticateBatch} found. */
export interface Authenticated {
  /** Per entry of the batch, in its order: true when its author's signature covers it. */
  ok: boolean[]
  /** Signatures checked (the rest were covered by hash links). */
  verified: number
}

/**
 * Authenticate a batch of entries with as few signature checks as the
 * batch allows. An entry is authenticated when its own signature verifies,
 * or when it is in the hash-ancestry, within the batch, of an entry by the
 * same author whose signature verified: that signature covers the signed
 * entry's parent CIDs, each the hash of a parent's bytes, whose own parents
 * are covered the same way, so the author signed those bytes too. Only the
 * same author's entries are taken that way: an author's signature says
 * nothing about an entry claiming another author.
 *
 * Each author's entries are taken newest first (highest seq): the newest
 * one's signature is checked and its ancestry walked; every entry of that
 * author it does not cover is checked the same way in turn, so a forged
 * entry (its signature fails) covers nothing and costs only its own check,
 * and genuine entries next to it are still authenticated.
 *
 * @param verify checks one entry's own signature
 */
export async function authenticateBatch<T extends LinkedEntry> (batch: readonly T[], verify: (entry: T) => Promise<boolean>, options: AuthenticateOptions = {}): Promise<Authenticated> {
  const ok = new Array<boolean>(batch.length).fill(false)
  let verified = 0
  const byCid = new Map<string, number>()
  const byAuthor = new Map<string, number[]>()
  for (const [i, e] of batch.entries()) {
    if (!byCid.has(e.key)) byCid.set(e.key, i)
    let list = byAuthor.get(e.author)
    if (list === undefined) byAuthor.set(e.author, list = [])
    list.push(i)
  }
  let links = options.maxLinks ?? 64 * batch.length
  for (const [author, list] of byAuthor) {
    list.sort((a, b) => batch[b].seq - batch[a].seq)
    // entries of other authors already walked for this author: their ancestry is done
    const walked = new Set<number>()
    let uncovered = list.length
    for (const i of list) {
      if (ok[i]) continue
      verified++
      if (!await verify(batch[i])) continue
      ok[i] = true
      uncovered--
      const stack = [i]
      walked.add(i)
      while (stack.length > 0 && uncovered > 0 && links > 0) {
        for (const parent of batch[stack.pop() as number].parents) {
          if (--links < 0) break
          const j = byCid.get(parent)
          if (j === undefined || walked.has(j)) continue
          walked.add(j)
          if (batch[j].author === author && !ok[j]) {
            ok[j] = true
            uncovered--
          }
          stack.push(j)
        }
      }
    }
  }
  return { ok, verified }
}
