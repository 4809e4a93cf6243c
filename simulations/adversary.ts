/**
 * A malicious peer for namespace simulations. It forges entries from honest
 * ones (tampered ops under the original signature, entries in an honest
 * author's name signed with its own key, flipped bytes, truncations,
 * garbage), gossips them, answers sync pulls with forged pages, and offers
 * snapshots that fail their checks (a root with a bad signature, blocks
 * whose bytes do not match their CID). Honest replicas must reject all of
 * it and change nothing.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import {
  decodeEntry, decodeSyncRequest, encodeEntry, encodeEntryBody, encodeHeadsMessage, encodeSnapshotRoot,
  encodeSnapshotRootBody, encodeSyncResponse, type LogEntry, type SyncResponse, type VectorClock
} from '../protocol/namespace.js'
import { cborCID } from '../node/namespace/replica.js'
import { writeCID } from './namespace-ops.js'
import type { Prng } from './prng.js'
import type { Signer } from '../node/namespace/identity.js'
import type { VirtualEndpoint } from './virtual-network.js'

/** How a forged entry was made. */
export type ForgeryKind = 'tampered' | 'impostor' | 'flipped' | 'truncated' | 'garbage'

/** A forged entry. */
export interface Forgery { kind: ForgeryKind, bytes: Uint8Array }

/** First number of the CIDs forged entries write (far from any honest write's). */
const FORGED_BASE = 1_000_000_000

/** Forges entries and plays the malicious peer on a virtual network. */
export class Adversary {
  /** CIDs the forged entries would write: none may ever become visible. */
  readonly forgedCIDs = new Set<string>()
  /** Requests answered. */
  answered = 0
  private forged = 0
  private readonly turn = new Map<string, number>()
  private readonly blocks = new Map<string, Uint8Array>()

  /**
   * @param honest encoded entries of honest authors to forge from
   * @param signer the adversary's own key (it may sign, but not as anyone else)
   */
  constructor (
    private readonly rng: Prng,
    private readonly signer: Signer,
    private readonly honest: Uint8Array[],
    private readonly now: () => number
  ) {
    if (honest.length === 0) throw new RangeError('need honest entries to forge from')
  }

  private nextCID (): CID {
    const cid = writeCID(FORGED_BASE + this.forged++)
    this.forgedCIDs.add(cid.toString())
    return cid
  }

  /** One forged entry of the given kind (random when not given). */
  async forge (kind?: ForgeryKind): Promise<Forgery> {
    const k: ForgeryKind = kind ?? this.rng.pick(['tampered', 'impostor', 'flipped', 'truncated', 'garbage'] as const)
    const original = this.rng.pick(this.honest)
    const entry = decodeEntry(original)
    switch (k) {
      case 'tampered': {
        // same signature, different ops: the signature no longer matches
        const ops = entry.ops.map(op => ({ ...op }))
        ops[0] = ops[0].op === 'put' ? { ...ops[0], cid: this.nextCID() } : { op: 'put', path: '/forged', cid: this.nextCID(), size: 1, mode: 0o644, mtime: entry.time, replaces: [] }
        return { kind: k, bytes: encodeEntry({ ...entry, ops }) }
      }
      case 'impostor': {
        // the honest author's next entry, signed with the adversary's key
        const seq = entry.seq + 1 + this.rng.int(0, 3)
        const body = {
          v: 2 as const,
          author: entry.author,
          seq,
          time: this.now(),
          parents: [],
          deps: [],
          ops: [{ op: 'put' as const, path: '/forged', cid: this.nextCID(), size: 1, mode: 0o644, mtime: this.now(), replaces: [] }]
        }
        const sig = await this.signer.sign(encodeEntryBody(body))
        return { kind: k, bytes: encodeEntry({ ...body, sig } satisfies LogEntry) }
      }
      case 'flipped': {
        const bytes = original.slice()
        const at = this.rng.int(0, bytes.length - 1)
        bytes[at] ^= this.rng.int(1, 255)
        return { kind: k, bytes }
      }
      case 'truncated':
        return { kind: k, bytes: original.slice(0, this.rng.int(1, original.length - 1)) }
      case 'garbage':
        return { kind: k, bytes: this.rng.bytes(this.rng.int(1, 300)) }
    }
  }

  /** A well-formed gossip message carrying `entries` and an inflated clock. */
  headsMessage (entries: Uint8Array[], clock: VectorClock): Uint8Array {
    return encodeHeadsMessage({ v: 1, type: 'heads', clock: inflate(clock), heads: [], entries })
  }

  /** Handle requests on `endpoint` with forged answers (cycling through the attacks per requester). */
  async attach (endpoint: VirtualEndpoint, clock: () => VectorClock): Promise<void> {
    await endpoint.handle({
      message: () => {},
      connected: () => {},
      request: async (from, data) => encodeSyncResponse(await this.answer(from, data, clock()))
    })
  }

  private async answer (from: string, data: Uint8Array, clock: VectorClock): Promise<SyncResponse> {
    this.answered++
    const request = decodeSyncRequest(data)
    if (request.type === 'blocks') {
      const blocks: Uint8Array[] = []
      for (const cid of request.cids) {
        const b = this.blocks.get(cid.toString())
        if (b !== undefined) blocks.push(b)
      }
      return { v: 1, type: 'blocks', id: request.id, blocks }
    }
    const n = this.turn.get(from) ?? 0
    this.turn.set(from, n + 1)
    const claimed = inflate(clock)
    switch (n % 4) {
      case 0: {
        const entries: Uint8Array[] = []
        for (let i = 0; i < 4; i++) entries.push((await this.forge()).bytes)
        return { v: 1, type: 'entries', id: request.id, clock: claimed, heads: [], entries, more: true }
      }
      case 1: {
        // a root whose signature is not its author's
        const body = { v: 1 as const, author: decodeEntry(this.rng.pick(this.honest)).author, time: this.now(), clock: claimed, heads: [], headDots: [], count: 0, tree: cborCID(this.rng.bytes(40)), tips: [] as Array<[string, CID]> }
        const bytes = encodeSnapshotRoot({ ...body, sig: this.rng.bytes(64) })
        const root = cborCID(bytes)
        this.blocks.set(root.toString(), bytes)
        return { v: 1, type: 'snapshot', id: request.id, root, clock: claimed }
      }
      case 2: {
        // a root CID served with other bytes
        const bytes = encodeSnapshotRoot({ v: 1, author: this.signer.id, time: this.now(), clock: claimed, heads: [], headDots: [], count: 0, tree: cborCID(this.rng.bytes(40)), tips: [], sig: this.rng.bytes(64) })
        const root = cborCID(this.rng.bytes(40))
        this.blocks.set(root.toString(), bytes)
        return { v: 1, type: 'snapshot', id: request.id, root, clock: claimed }
      }
      default: {
        // a validly signed root whose tree root node is served with wrong bytes
        const tree = cborCID(this.rng.bytes(40))
        this.blocks.set(tree.toString(), this.rng.bytes(100))
        const body = { v: 1 as const, author: this.signer.id, time: this.now(), clock: claimed, heads: [], headDots: [], count: 1, tree, tips: [] as Array<[string, CID]> }
        const bytes = encodeSnapshotRoot({ ...body, sig: await this.signer.sign(encodeSnapshotRootBody(body)) })
        const root = cborCID(bytes)
        this.blocks.set(root.toString(), bytes)
        return { v: 1, type: 'snapshot', id: request.id, root, clock: claimed }
      }
    }
  }
}

/** A clock claiming more than `clock` of every author. */
function inflate (clock: VectorClock): VectorClock {
  const out: VectorClock = {}
  for (const [author, n] of Object.entries(clock)) out[author] = n + 100
  return out
}
