/**
 * Snapshots and compaction (docs/namespace.md, "Compaction"): the replica's
 * live versions written as a signed root over the snapshot tree (a prolly
 * tree of dag-cbor nodes, snapshot-tree.ts; blocks under `b!`, recorded in
 * `m!snapshot`), pruning the history every active member
 * has seen, serving the blocks to peers, and merging a peer's snapshot into
 * this replica's state (the state-based merge of two observed-remove sets).
 *
 * Everything that knows the snapshot's format lives here and nowhere else —
 * the log only asks {@link Snapshots.current} for the root to point a peer
 * at, and the upgrades ask {@link Snapshots.writeSnapshot} to rewrite it —
 * so the format can be replaced as one module.
 *
 * It owns no state in memory: the snapshot is in the store, the clock and
 * heads are the store's, the members' stable clock is members.ts's.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import {
  MAX_BLOCKS_WANT,
  decodeEntry, decodeSnapshotRoot, encodeEntryBody, encodeSnapshotRoot, encodeSnapshotRootBody,
  type Op, type SnapshotRoot, type SnapshotVersion
} from '../../protocol/namespace.js'
import { cborCID } from '../blocks/verify.js'
import { ShoalError } from '../errors.js'
import { InvalidTreeNodeError, buildTree, walkTree } from './snapshot-tree.js'
import { covers, dominates, merge, missing, type Dot, type VectorClock } from './clock.js'
import { Txn, decodeJSON } from './kv.js'
import { storedPin, wirePin } from './pins.js'
import { SEQ_RANGE, blockKey, dotOfSeqKey, dotOfSupersededKey, entryKey, metaKey, seqKey, supersededKey } from './rows.js'
import { sortedHeads, type ReplicaStore } from './store.js'
import type { PathState, Version } from './tree.js'
import type { Signer, Verifier } from './identity.js'
import type { TrustPolicy } from './trust.js'
import type { WallClock } from './api.js'
import type { Logger } from '../logger.js'

/** A snapshot that failed its checks. */
export class InvalidSnapshotError extends ShoalError {
  override name = 'InvalidSnapshotError'
  override readonly status = 502
}

/** A snapshot signed by an author this replica does not trust: refused before its tree is fetched. */
export class UntrustedSnapshotError extends InvalidSnapshotError {
  override name = 'UntrustedSnapshotError'
}

/** A snapshot's tip entry, fetched and verified. */
interface ProvenTip { author: string, seq: number, cid: CID, bytes: Uint8Array }

/**
 * `m!snapshot`: this replica's latest snapshot, and every block of it (its
 * tree's nodes and its root: to delete those the next snapshot no longer
 * reaches; a store of an earlier build lists its shards here).
 */
interface SnapshotMeta { root: string, clock: VectorClock, blocks: string[] }

/** What {@link Snapshots} is built from. */
export interface SnapshotsComponents {
  store: ReplicaStore
  /** This replica's author id (the author of its snapshots). */
  id: string
  signer: Signer
  verifier: Verifier
  trust: TrustPolicy
  clock: WallClock
  logger: Logger
  /** The members (members.ts): who has seen what. */
  members: {
    noteMember: (peer: string, clock: VectorClock) => void
    save: () => Promise<void>
    stableClock: () => VectorClock
    confirms: (author: string, n: number, except: string) => boolean
  }
  /** Versions superseded before they arrived, by `r!` key (apply.ts). */
  superseded: () => Promise<Map<string, string[]>>
  /** Apply held entries that became ready (log.ts); called under the store's lock. */
  drain: () => Promise<number>
  /** A merged snapshot changed the tree. */
  changed: () => void
  /**
   * Write `ops` as this replica's own entries (writes.ts), under the lock
   * already held: how versions a snapshot dropped without proof are
   * published again (see {@link Snapshots.loadSnapshot}).
   */
  republish: (ops: Op[]) => Promise<void>
  /** Ignored: the tree's nodes are sized by its chunking rule (protocol/snapshot-tree.ts). */
  shardPaths?: number
  /** Compact once this many entries became stable since the last compaction. */
  compactAfter: number
}

/** Writes, serves, merges snapshots; compacts. */
export class Snapshots {
  constructor (private readonly components: SnapshotsComponents) {}

  /** The latest snapshot's root and clock, if any. */
  async current (): Promise<{ root: CID, clock: VectorClock } | undefined> {
    const snap = await this.components.store.meta<SnapshotMeta>('snapshot')
    return snap === undefined ? undefined : { root: CID.parse(snap.root), clock: snap.clock }
  }

  /** Whether this replica has written a snapshot. */
  async exists (): Promise<boolean> {
    return await this.components.store.meta<SnapshotMeta>('snapshot') !== undefined
  }

  /**
   * Whether this replica's snapshot is in the format peers read today (an
   * older build's root — flat shards, no tips — is not): true when there is
   * none.
   */
  async readable (): Promise<boolean> {
    const snap = await this.components.store.meta<SnapshotMeta>('snapshot')
    if (snap === undefined) return true
    const bytes = await this.components.store.kv.get(blockKey(snap.root))
    if (bytes === undefined) return false
    try {
      decodeSnapshotRoot(bytes)
      return true
    } catch {
      return false
    }
  }

  /**
   * Snapshot blocks this replica holds, and the entries its snapshots name
   * as tips (any held entry is served: entries are public to whoever can
   * pull them): the longest prefix of `cids` that it holds and that fits in
   * `maxBytes` (at least one block when it has the first). The asker asks
   * again for the rest.
   */
  async blocks (cids: CID[], maxBytes = 4 * 1024 * 1024): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    let total = 0
    const { kv } = this.components.store
    for (const cid of cids.slice(0, MAX_BLOCKS_WANT)) {
      const key = cid.toString()
      const bytes = await kv.get(blockKey(key)) ?? await kv.get(entryKey(key))
      if (bytes === undefined) break
      if (out.length > 0 && total + bytes.byteLength > maxBytes) break
      out.push(bytes)
      total += bytes.byteLength
    }
    return out
  }

  /**
   * When enough history is stable, snapshot the tree and prune the stable
   * entries. Returns whether it compacted.
   */
  async compact (force = false): Promise<boolean> {
    const { store, members } = this.components
    return await store.exclusive(async () => {
      await members.save()
      const stable = members.stableClock()
      const gain = missing(stable, store.pruned)
      if (gain === 0 || (!force && gain < this.components.compactAfter)) return false
      const txn = new Txn(store.kv)
      await this.writeSnapshot(txn, await this.collectState(), store.clock, store.heads)
      for (const [author, n] of Object.entries(stable)) {
        const from = store.pruned[author] ?? 0
        if (from >= n) continue
        // from the previous tip (kept at `from` when it was the author's newest) up to n, but the newest: the tip proves the counter
        for await (const [key, value] of store.kv.iterate({ gt: seqKey(author, Math.max(0, from - 1)), lte: seqKey(author, n) })) {
          if (dotOfSeqKey(key)[1] === store.clock[author]) continue
          txn.del(entryKey(decodeJSON<{ cid: string }>(value).cid))
          txn.del(key)
        }
      }
      const pruned = merge(store.pruned, stable)
      txn.put(metaKey('pruned'), pruned)
      await txn.commit(true)
      store.setPruned(pruned)
      this.components.logger.info({ pruned: gain }, 'namespace history compacted')
      return true
    })
  }

  /** Make a snapshot now (tests, benchmarks); returns its root. */
  async snapshot (): Promise<CID> {
    const { store } = this.components
    return await store.exclusive(async () => {
      const txn = new Txn(store.kv)
      const root = await this.writeSnapshot(txn, await this.collectState(), store.clock, store.heads)
      await txn.commit(true)
      return root
    })
  }

  /** Every path's live versions, from the store (sorted by path). */
  async collectState (): Promise<Map<string, Version[]>> {
    const state = new Map<string, Version[]>()
    for await (const [key, value] of this.components.store.kv.iterate({ gt: 'v!', lt: 'v"' })) {
      const versions = decodeJSON<PathState>(value).versions
      if (versions.length > 0) state.set(key.slice(2), versions)
    }
    return state
  }

  /**
   * Write a snapshot of `state` at `clock` into `txn`, replacing the
   * previous snapshot: its tree (snapshot-tree.ts) is built over the whole
   * state, but only the nodes not already stored are written — the nodes of
   * unchanged runs of paths are the previous snapshot's, shared by CID — and
   * the previous snapshot's blocks the new one no longer reaches are deleted.
   */
  async writeSnapshot (txn: Txn, state: Map<string, Version[]>, clock: VectorClock, heads: Map<string, Dot>): Promise<CID> {
    const old = await this.components.store.meta<SnapshotMeta>('snapshot')
    // buildTree hands every node of the new tree to `put`, stored or not: that is the new snapshot's block list
    const nodes = new Set<string>()
    const sorted = [...state.keys()].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
    const tree = await buildTree(
      (function * () { for (const path of sorted) yield [path, (state.get(path) as Version[]).map(toSnapshotVersion)] as [string, SnapshotVersion[]] })(),
      async (cid, bytes) => {
        const key = cid.toString()
        if (nodes.has(key)) return
        nodes.add(key)
        if (await txn.getBytes(blockKey(key)) === undefined) txn.putBytes(blockKey(key), bytes)
      }
    )
    const tips: SnapshotRoot['tips'] = []
    for (const author of Object.keys(clock).sort()) {
      // read through the batch: a merged snapshot's tips are stored by the same batch
      const row = await txn.get<{ cid: string }>(seqKey(author, clock[author]))
      if (row !== undefined) tips.push([author, CID.parse(row.cid)])
    }
    const body: Omit<SnapshotRoot, 'sig'> = {
      v: 1,
      author: this.components.id,
      time: this.components.clock.now(),
      clock: { ...clock },
      heads: sortedHeads(heads).map(h => CID.parse(h)),
      headDots: sortedHeads(heads).map(h => heads.get(h) as Dot),
      count: tree.count,
      tree: tree.root,
      tips
    }
    const sig = await this.components.signer.sign(encodeSnapshotRootBody(body))
    const rootBytes = encodeSnapshotRoot({ ...body, sig })
    const root = cborCID(rootBytes)
    txn.putBytes(blockKey(root.toString()), rootBytes)
    const blocks = [...nodes, root.toString()]
    const keep = new Set(blocks)
    for (const b of old?.blocks ?? []) if (!keep.has(b)) txn.del(blockKey(b))
    txn.put(metaKey('snapshot'), { root: root.toString(), clock: body.clock, blocks } satisfies SnapshotMeta)
    return root
  }

  /**
   * Merge a peer's snapshot into this replica: the state-based merge of two
   * observed-remove sets. A version both sides hold stays; a version only one
   * side holds stays unless the other side's clock covers it (then the other
   * side saw it and removed it). So writes this replica made while away, and
   * history it pruned that the peer never saw, are kept; what the peer
   * removed knowingly goes. Every block is hash-checked and the root's
   * signature verified before anything changes; then this replica writes its
   * own snapshot of the merged state, so it can serve peers that are behind.
   *
   * The tree is walked (snapshot-tree.ts: every node checked against its
   * CID, its parent and the chunking rule) into memory before anything
   * changes; the merge then runs in memory over both states.
   *
   * Trust: a snapshot by an author this replica does not trust is refused
   * before its tree is fetched. A trusted snapshot may come from a node
   * that trusts more authors: their versions in it are dropped (unless this
   * replica holds the same version, applied while the author was trusted),
   * and so are versions this replica saw superseded before they arrived.
   * Their counters in the snapshot's clock are not adopted, so this
   * replica's clock keeps saying it has not seen their entries (should they
   * be trusted later, they are pulled then) and its own snapshots do not
   * claim them. The snapshot's clock still decides which of this replica's
   * versions the snapshot's author saw and removed: a snapshot is a state,
   * not a history, and cannot tell who removed a version, so a removal by an
   * author only the snapshot's author trusts is taken with it.
   *
   * @param author - the peer serving the snapshot: only its own snapshots are accepted
   * @throws {UntrustedSnapshotError} for a snapshot by an author this replica does not trust
   * @throws {InvalidSnapshotError} for a snapshot that fails its checks
   */
  async loadSnapshot (root: CID, fetch: (cids: CID[]) => Promise<Uint8Array[]>, author?: string): Promise<boolean> {
    const { store, trust } = this.components
    const [rootBytes] = await fetch([root])
    if (rootBytes === undefined || !cborCID(rootBytes).equals(root)) throw new InvalidSnapshotError(`snapshot root ${root.toString()} missing or corrupt`)
    let snap: SnapshotRoot
    try {
      snap = decodeSnapshotRoot(rootBytes)
    } catch (err: any) {
      throw new InvalidSnapshotError(`snapshot root: ${String(err?.message ?? err)}`)
    }
    if (author !== undefined && snap.author !== author) throw new InvalidSnapshotError(`snapshot by ${snap.author} served by ${author}`)
    if (!trust.trusts(snap.author)) throw new UntrustedSnapshotError(`snapshot ${root.toString()} by ${snap.author}, an author this node does not trust`)
    const { sig, ...body } = snap
    if (!await this.components.verifier(snap.author, encodeSnapshotRootBody(body), sig)) throw new InvalidSnapshotError(`snapshot root ${root.toString()} has a bad signature`)
    const { clock: theirClock, tips } = await this.provenClock(snap, fetch)
    if (dominates(store.clock, theirClock)) return false
    const theirs = new Map<string, Version[]>()
    let paths = 0
    try {
      // the peer answers with a prefix of what was asked (bounded in bytes): the walker asks again for the rest
      for await (const [path, versions] of walkTree(snap.tree, async cids => await fetch(cids), { concurrency: 4, batch: MAX_BLOCKS_WANT })) {
        paths++
        // a version beyond the counters proven is not taken from a snapshot: its entry comes by pull, signed
        const proven = versions.map(fromSnapshotVersion).filter(v => covers(theirClock, [v.author, v.seq]) || covers(store.clock, [v.author, v.seq]))
        if (proven.length > 0) theirs.set(path, proven)
      }
    } catch (err: any) {
      if (err instanceof InvalidTreeNodeError) throw new InvalidSnapshotError(err.message, { cause: err })
      throw err
    }
    if (paths !== snap.count) throw new InvalidSnapshotError(`snapshot holds ${paths} paths, its root says ${snap.count}`)
    await store.exclusive(async () => {
      const ours = await this.collectState()
      const superseded = await this.components.superseded()
      const dropped = this.dropRefused(theirs, ours, superseded)
      // a version whose signed entry this replica still holds is never dropped on a snapshot's word alone
      const held: Array<[string, Version]> = []
      const merged = mergeStates(ours, store.clock, theirs, theirClock, {
        keepA: v => !covers(store.pruned, [v.author, v.seq]),
        keptA: (path, v) => held.push([path, v])
      })
      const clock = merge(store.clock, theirClock)
      const heads = this.mergeHeads(snap)
      const batch = store.batch(clock, heads)
      for (const [author, n] of Object.entries(clock)) if ((store.clock[author] ?? 0) !== n) batch.changed.add(author)
      const txn = batch.txn
      for (const prefix of ['t!', 'v!', 'c!']) await txn.clearPrefix(prefix)
      for (const [path, versions] of merged) await batch.tree.load(path, versions)
      // a superseded version the merged clock covers never arrives as an entry
      for (const key of superseded.keys()) if (covers(clock, dotOfSupersededKey(key))) txn.del(key)
      // history the snapshot covers can no longer be served entry by entry
      const pruned = merge(store.pruned, theirClock)
      for await (const [key, value] of store.kv.iterate({ ...SEQ_RANGE })) {
        const dot = dotOfSeqKey(key)
        // but each author's newest entry: the tip that proves its counter in this replica's own snapshots
        if (covers(pruned, dot) && dot[1] !== clock[dot[0]]) {
          txn.del(key)
          txn.del(entryKey(decodeJSON<{ cid: string }>(value).cid))
        }
      }
      for (const tip of tips) {
        if (clock[tip.author] !== tip.seq) continue
        txn.putBytes(entryKey(tip.cid.toString()), tip.bytes)
        txn.put(seqKey(tip.author, tip.seq), { cid: tip.cid.toString(), w: batch.total })
      }
      txn.put(metaKey('pruned'), pruned)
      await this.writeSnapshot(txn, merged, clock, heads)
      await store.commit(batch)
      store.setPruned(pruned)
      this.components.members.noteMember(snap.author, theirClock)
      this.components.logger.info({ root: root.toString(), paths: snap.count, merged: merged.size, dropped, kept: held.length }, 'namespace merged a snapshot')
      if (held.length > 0) {
        this.components.logger.warn({ snapshot: snap.author, versions: held.length, paths: held.slice(0, 5).map(([p]) => p) }, 'a snapshot left out versions whose signed entries this node holds, and no entry it holds removes them: published again as this node\'s own writes')
        for (const ops of republishOps(held)) await this.components.republish(ops)
      }
      // held entries may have become ready
      await this.components.drain()
    })
    this.components.changed()
    return true
  }

  /**
   * Heads after merging a snapshot: the maximal entries of both sides. A head
   * of one side that the other side's clock covers, and that the other side
   * does not list as a head, is behind the other side's heads. The
   * snapshot's heads by authors this replica does not trust are left out:
   * their entries are not here (heads only name an entry's parents).
   */
  private mergeHeads (snap: SnapshotRoot): Map<string, Dot> {
    const { store, trust } = this.components
    const theirs = new Map<string, Dot>()
    for (const [i, h] of snap.heads.entries()) if (trust.trusts(snap.headDots[i][0])) theirs.set(h.toString(), snap.headDots[i])
    const out = new Map<string, Dot>()
    for (const [h, dot] of store.heads) if (theirs.has(h) || !covers(snap.clock, dot)) out.set(h, dot)
    for (const [h, dot] of theirs) if (store.heads.has(h) || !covers(store.clock, dot)) out.set(h, dot)
    return out
  }

  /**
   * The counters of a snapshot's clock this replica adopts (docs/namespace.md,
   * "What a snapshot may claim"): those of authors it trusts, and of them,
   * where the snapshot claims more than this replica has applied, only what
   * is proven — by the author's own signed entry at that counter (the
   * snapshot's tip, fetched and verified here), by the snapshot's author
   * for its own counter (its signature on the root), or by a second trusted
   * member heard claiming as much. A counter not proven stays at this
   * replica's own: the author's entries come by pull, signed. So no member
   * can make this replica skip another author's future writes by claiming
   * it has seen them.
   */
  private async provenClock (snap: SnapshotRoot, fetch: (cids: CID[]) => Promise<Uint8Array[]>): Promise<{ clock: VectorClock, tips: ProvenTip[] }> {
    const { store, trust, members } = this.components
    const out: VectorClock = {}
    const tipOf = new Map(snap.tips.map(([author, cid]) => [author, cid]))
    const wanted: string[] = []
    for (const [author, n] of Object.entries(snap.clock)) {
      if (!trust.trusts(author)) continue
      if (n <= (store.clock[author] ?? 0)) out[author] = n
      else if (tipOf.has(author)) wanted.push(author)
    }
    const tips: ProvenTip[] = []
    for (let i = 0; i < wanted.length;) {
      const want = wanted.slice(i, i + MAX_BLOCKS_WANT)
      const got = (await fetch(want.map(a => tipOf.get(a) as CID))).slice(0, want.length)
      if (got.length === 0) break
      for (const [j, bytes] of got.entries()) {
        const author = want[j]
        const cid = tipOf.get(author) as CID
        const n = snap.clock[author]
        if (await this.isTip(bytes, cid, author, n)) {
          out[author] = n
          tips.push({ author, seq: n, cid, bytes })
        } else {
          this.components.logger.warn({ snapshot: snap.author, author, claimed: n }, 'a snapshot\'s tip does not prove its counter')
        }
      }
      i += got.length
    }
    // no tip, or one that did not verify: the snapshot's author vouches for its own counter; another author's needs a second member's word
    for (const [author, n] of Object.entries(snap.clock)) {
      if (!trust.trusts(author) || out[author] !== undefined) continue
      if (author === snap.author || members.confirms(author, n, snap.author)) out[author] = n
      else if ((store.clock[author] ?? 0) > 0) out[author] = store.clock[author]
    }
    return { clock: out, tips }
  }

  /** True when `bytes` is the entry `cid`, by `author` at seq `n`, signed by it. */
  private async isTip (bytes: Uint8Array, cid: CID, author: string, n: number): Promise<boolean> {
    if (!cborCID(bytes).equals(cid)) return false
    try {
      const entry = decodeEntry(bytes)
      if (entry.author !== author || entry.seq !== n) return false
      return await this.components.verifier(author, encodeEntryBody(entry), entry.sig)
    } catch {
      return false
    }
  }

  /**
   * Drop from a snapshot's versions (in place) those by authors this replica
   * does not trust, unless it holds the same version itself, and those it
   * saw superseded before they arrived. Returns how many were dropped.
   */
  private dropRefused (theirs: Map<string, Version[]>, ours: Map<string, Version[]>, superseded: Map<string, string[]>): number {
    let dropped = 0
    for (const [path, versions] of theirs) {
      const held = new Set((ours.get(path) ?? []).map(v => `${v.author}\n${v.seq}`))
      const keep = versions.filter(v => {
        if (superseded.get(supersededKey([v.author, v.seq]))?.includes(path) === true) return false
        return this.components.trust.trusts(v.author) || held.has(`${v.author}\n${v.seq}`)
      })
      dropped += versions.length - keep.length
      if (keep.length > 0) theirs.set(path, keep)
      else theirs.delete(path)
    }
    return dropped
  }
}

/** Options of {@link mergeStates}. */
export interface MergeOptions {
  /** Keep a version of `a` that `b` saw and does not hold when this says so (a version whose signed entry `a` holds). */
  keepA?: (v: Version) => boolean
  /** Called for each version kept by {@link keepA} alone. */
  keptA?: (path: string, v: Version) => void
}

/**
 * Ops that publish again, as this replica's own writes, versions a snapshot
 * left out without proof: each replaces the old version with the same
 * content, mode and pin under a new dot, so every node shows it (next to a
 * version that replaced it meanwhile, as a conflict copy). One op per path
 * per list: versions sharing a path go to separate lists.
 */
function republishOps (held: Array<[string, Version]>): Op[][] {
  const rounds: Array<Map<string, Op>> = []
  for (const [path, v] of held) {
    const replaces: Array<[string, number]> = [[v.author, v.seq]]
    const op: Op = v.type === 'dir'
      ? { op: 'mkdir', path, mode: v.mode, mtime: v.mtime, replaces }
      : { op: 'put', path, cid: CID.parse(v.cid as string), size: v.size ?? 0, mode: v.mode, mtime: v.mtime, replaces, ...(v.pin !== undefined ? { pin: wirePin(v.pin) } : {}) }
    let round = rounds.find(r => !r.has(path))
    if (round === undefined) { round = new Map(); rounds.push(round) }
    round.set(path, op)
  }
  return rounds.map(r => [...r.values()])
}

/**
 * State-based merge of two replicas' live versions, each at its clock: keep a
 * version both hold, or one side holds and the other has not seen.
 */
export function mergeStates (a: Map<string, Version[]>, clockA: VectorClock, b: Map<string, Version[]>, clockB: VectorClock, options: MergeOptions = {}): Map<string, Version[]> {
  const out = new Map<string, Version[]>()
  const key = (v: Version): string => `${v.author}\n${v.seq}`
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const va = a.get(path) ?? []
    const vb = b.get(path) ?? []
    const inA = new Set(va.map(key))
    const inB = new Set(vb.map(key))
    const keep: Version[] = []
    for (const v of va) {
      if (inB.has(key(v)) || !covers(clockB, [v.author, v.seq])) keep.push(v)
      else if (options.keepA?.(v) === true) {
        keep.push(v)
        options.keptA?.(path, v)
      }
    }
    for (const v of vb) if (!inA.has(key(v)) && !covers(clockA, [v.author, v.seq])) keep.push(v)
    if (keep.length > 0) out.set(path, keep)
  }
  return out
}

/** A live version as a snapshot carries it. */
function toSnapshotVersion (v: Version): SnapshotVersion {
  if (v.type === 'dir') return { author: v.author, seq: v.seq, time: v.time, type: 'dir', mode: v.mode, mtime: v.mtime }
  const out: SnapshotVersion = { author: v.author, seq: v.seq, time: v.time, type: 'file', cid: CID.parse(v.cid as string), size: v.size ?? 0, mode: v.mode, mtime: v.mtime }
  if (v.pin !== undefined) out.pin = wirePin(v.pin)
  return out
}

/** A snapshot's version as the tree stores it. @throws {InvalidSnapshotError} for a file without a cid */
function fromSnapshotVersion (v: SnapshotVersion): Version {
  if (v.type === 'dir') return { author: v.author, seq: v.seq, time: v.time, type: 'dir', mode: v.mode, mtime: v.mtime }
  if (v.cid === undefined) throw new InvalidSnapshotError(`snapshot version [${v.author}, ${v.seq}] is a file without a cid`)
  const out: Version = { author: v.author, seq: v.seq, time: v.time, type: 'file', cid: v.cid.toString(), size: v.size ?? 0, mode: v.mode, mtime: v.mtime }
  if (v.pin !== undefined) out.pin = storedPin(v.pin)
  return out
}
