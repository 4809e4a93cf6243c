/**
 * Wire codecs of the shared namespace: log entries, snapshot blocks, the
 * gossip message on {@link NAMESPACE_TOPIC} and the request/response messages
 * of the sync protocol {@link SYNC_PROTOCOL}.
 *
 * Everything is dag-cbor. Decoders are strict (exact field sets, exact types,
 * bounded sizes) and pure: anything else throws {@link InvalidMessageError}.
 * Encoders check their input the same way, so a value that encodes also
 * decodes to an equal value. Decoded values are built fresh and their bytes
 * are copies, never views of the input.
 *
 * Content-addressed structures (entries, snapshot roots; the snapshot
 * tree's nodes in protocol/snapshot-tree.ts) must also
 * be in canonical form: their decoders reject any bytes other than what their
 * encoder produces for the decoded value, so one entry has exactly one CID.
 * Entries carried by gossip and sync messages stay encoded: decode each with
 * {@link decodeEntry} and hash exactly those bytes.
 *
 * Signatures are not checked here (no keys in protocol/): the namespace
 * verifies them over {@link encodeEntryBody}.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { equals } from 'multiformats/bytes'
import { CID } from 'multiformats/cid'
import { CborCursor } from './cbor-cursor.js'
import { NOT_CANONICAL, cutField, decodeCanonicalDagCbor, decodeCanonicalMap, withoutField, type FieldRange } from './canonical.js'
import { cidText } from './cid-text.js'
import { InvalidMessageError } from './errors.js'
import { isCodedPolicy, isPolicyText } from './durability.js'
import { inKeyOrder } from './key-order.js'
import { fieldChecks, type CidRule } from './fields.js'
import { MAX_TIME } from './time.js'
import { isPlainMap, isSet, plainBytes, show, type Fields } from './values.js'

/** gossipsub topic on which nodes announce their heads (and new entries). */
export const NAMESPACE_TOPIC = '/shoal/namespace/2.1.0'
/** The libp2p protocol id of namespace sync (pull entries by vector clock, fetch snapshot blocks). */
export const SYNC_PROTOCOL = '/shoal/ns-sync/2.1.0'
/**
 * The version of the namespace's messages and snapshot blocks. Entries have
 * their own ({@link ENTRY_VERSION}); the protocol ids above name the wire
 * protocol as a whole (2.0.0: entries without clocks — nodes of 1.0.0 and
 * 2.0.0 do not exchange namespace data; 2.1.0: retire ops and clocks that
 * leave retired authors out — a 2.0.0 node would refuse the entries of a
 * node that retired an author, and everything that node wrote after).
 */
export const NAMESPACE_VERSION = 1

/** Largest encoded entry. */
export const MAX_ENTRY_BYTES = 1024 * 1024
/** Most ops in one entry (a big move is split over several entries). */
export const MAX_OPS = 4096
/**
 * Most authors one vector clock may name: what the largest message
 * ({@link MAX_SYNC_MESSAGE_BYTES}) can hold at ~57 bytes an author, so the
 * message's byte limit is the real bound. Clocks on the wire name only the
 * authors not retired (docs/namespace.md, "Retired authors"), so this bounds
 * the authors writing at one time, not the authors a namespace ever had.
 */
export const MAX_CLOCK_AUTHORS = 65_536
/** Most parents (heads) an entry may name. */
export const MAX_PARENTS = 256
/** Most dots an op may replace. */
export const MAX_REPLACES = 256
/** Longest peer id string. */
export const MAX_PEER_ID_LENGTH = 128
/** Largest sync or gossip message. */
export const MAX_SYNC_MESSAGE_BYTES = 4 * 1024 * 1024 + 64 * 1024
/** Most entries in one `entries` response or gossip message. */
export const MAX_BATCH_ENTRIES = 2048
/** Most CIDs in one `blocks` request. */
export const MAX_BLOCKS_WANT = 64
/** Largest snapshot block (a tree node). */
export const MAX_SNAPSHOT_BLOCK_BYTES = 1024 * 1024
/**
 * Largest snapshot root. A v1 or v2 root names every author the snapshot
 * has seen (a counter, a tip, and for retired authors their retirement:
 * ~290 bytes an author), so it may fill a sync answer (one block per
 * `blocks` answer): ~14,000 lifetime authors. A v3 root names only its
 * author blocks ({@link LinkedSnapshotRoot}).
 */
export const MAX_SNAPSHOT_ROOT_BYTES = 4 * 1024 * 1024 - 64 * 1024
/**
 * Most authors (counters) a snapshot's clock may name in all, across a v3
 * root's author blocks: what a replica holds in memory as one clock
 * (~100 bytes an author), not what a message can carry.
 */
export const MAX_SNAPSHOT_AUTHORS = 1_048_576
/** Most author blocks a v3 root links. */
export const MAX_SNAPSHOT_AUTHOR_BLOCKS = 65_536
/**
 * Bound of the replica's `shardPaths` option, which snapshots no longer use
 * (they are trees whose node sizes follow protocol/snapshot-tree.ts): kept
 * while that option is accepted.
 */
export const MAX_SHARD_PATHS = 4096

/** Peer id (string form) → highest sequence number seen from that author. */
export type VectorClock = Record<string, number>

/** One write, named by its author and the sequence number of the entry that made it. */
export type Dot = [author: string, seq: number]

/**
 * A file's durability policy, carried by its namespace record so that every
 * node knows every policy. Absent on a record: the file has no pin.
 */
export interface Pin {
  /**
   * Canonical text of the policy: `none`, `ec:K+M` (1 ≤ K ≤ 16, 1 ≤ M ≤ 8,
   * K + M ≤ 24) or `replicas:N` (1 ≤ N ≤ 16); no leading zeros, no spaces
   * (see {@link isPinPolicy}).
   */
  policy: string
  /** The file's stripe manifest (dag-cbor, sha2-256); only with a coded policy (`ec:` or `replicas:N`, N ≥ 2). */
  manifest?: CID
  /** A verified copy in an S3-compatible cold tier (with any policy: `none` means only the cold copy is kept). */
  cold?: ColdCopy
}

/**
 * Where a verified cold copy of a file lives: a CARv1 object of its DAG and a
 * block-offset index object in a bucket (docs/tier.md). Carries the endpoint so
 * every node can read it with its own credentials; never credentials.
 */
export interface ColdCopy {
  /** `http(s)://host[:port]` of the S3-compatible service. */
  endpoint: string
  region?: string
  bucket: string
  /** Key of the CAR object. */
  carKey: string
  carSize: number
  /** Key of the index object. */
  indexKey: string
  indexSize: number
  /** dag-cbor CID of the index object (it lists every block's CID, offset and length). */
  indexCid: CID
  /** Blocks in the CAR. */
  blocks: number
  /** Bytes of block data in the CAR. */
  blockBytes: number
}

/** Create or replace a file at `path`. */
export interface PutOp {
  op: 'put'
  path: string
  /** UnixFS root CID of the content. */
  cid: CID
  size: number
  mode: number
  mtime: number
  /** The versions at `path` this write supersedes (what the writer saw there). */
  replaces: Dot[]
  /** The file's durability policy; absent when it has none. */
  pin?: Pin
}
/** Create a directory at `path`. */
export interface MkdirOp {
  op: 'mkdir'
  path: string
  mode: number
  mtime: number
  replaces: Dot[]
}
/** Remove the named versions at `path`. */
export interface DelOp {
  op: 'del'
  path: string
  replaces: Dot[]
}
/** An operation on a path. */
export type PathOp = PutOp | MkdirOp | DelOp
/**
 * `author`'s history ends at `seq` as far as the entry's author saw: clocks
 * on the wire may leave `author` out where they hold exactly `seq`
 * (docs/namespace.md, "Retired authors"). It changes no path. An entry
 * holding it depends on `author`'s entries up to `seq`, as on its parents.
 */
export interface RetireOp {
  op: 'retire'
  author: string
  seq: number
}
/** A namespace operation. */
export type Op = PathOp | RetireOp

/** What every version of an entry's signed part holds. */
interface EntryBodyFields {
  /** Peer id (string) of the author; its Ed25519 key signs the entry. */
  author: string
  /** The author's sequence number: 1, 2, 3… with no gaps. */
  seq: number
  /** Wall time of the write at the author, ms since the epoch (at most {@link MAX_TIME}). */
  time: number
  /** The author's heads when it wrote the entry (the Merkle links of the log). */
  parents: CID[]
  /** At least one op; paths are normalised and distinct within an entry, and so are retired authors (v2 only, never the entry's author). */
  ops: Op[]
}

/**
 * The signed part of a log entry as this version writes it: its size does
 * not depend on how many authors the namespace has. The entry's vector
 * clock is not carried: a replica derives what it depends on from `deps`
 * (the dots of its parents; an author's entries form a chain, so a dot
 * stands for everything its author wrote up to it).
 */
export interface EntryBodyV2 extends EntryBodyFields {
  v: 2
  /** The dot (author, seq) of each parent, in the same order as `parents`. */
  deps: Dot[]
}

/**
 * The signed part of a log entry of the first version, still accepted (a
 * history written before holds them): it carries the author's whole vector
 * clock, one counter per author ever seen.
 */
export interface EntryBodyV1 extends EntryBodyFields {
  v: 1
  /** What the author had applied, plus this entry (`clock[author] === seq`). */
  clock: VectorClock
}

/** The signed part of a log entry, of either version. */
export type EntryBody = EntryBodyV1 | EntryBodyV2

/** A log entry: a dag-cbor block; `sig` is the Ed25519 signature by `author` over {@link encodeEntryBody}. */
export type LogEntry = EntryBody & { sig: Uint8Array }

/** The version of the entries this build writes. */
export const ENTRY_VERSION = 2

/** A version of a path as a snapshot carries it. */
export interface SnapshotVersion {
  author: string
  seq: number
  /** Entry time of the write. */
  time: number
  type: 'file' | 'dir'
  /** Files only. */
  cid?: CID
  /** Files only. */
  size?: number
  mode: number
  mtime: number
  /** Files only: the version's durability policy, when it has one. */
  pin?: Pin
}

/**
 * Retired authors a snapshot carries, grouped by the entry (dot) that
 * retired them: per group, each author and the seq it was retired at.
 */
export type SnapshotRetired = Array<[dot: Dot, authors: Array<[author: string, seq: number]>]>

/**
 * The root of a snapshot of the namespace state (signed by the node that
 * made it), with its per-author part inline. Version 2 adds `retired`; a
 * root with no retired author is written as version 1, which every build
 * reads. A snapshot of many lifetime authors is written as a
 * {@link LinkedSnapshotRoot} instead.
 */
export interface SnapshotRoot {
  v: 1 | 2
  author: string
  time: number
  /** Everything applied into the snapshot. */
  clock: VectorClock
  /** The heads at that point. */
  heads: CID[]
  /** The dot (author, seq) of each head, in the same order: tells a merging replica which heads are behind its own. */
  headDots: Dot[]
  /** Number of paths in the tree. */
  count: number
  /**
   * The root node of the snapshot tree (protocol/snapshot-tree.ts): the
   * state `path → versions` as a prolly tree. An empty namespace is the
   * empty leaf.
   */
  tree: CID
  /**
   * For authors of `clock`, the CID of their entry at the counter `clock`
   * claims (author order, each author at most once): the signed proof of that
   * counter. A replica adopts a snapshot's counter for an author only with a
   * tip it fetched and verified (docs/namespace.md, "What a snapshot may
   * claim").
   */
  tips: Array<[author: string, entry: CID]>
  /**
   * Version 2 only: the retirements applied into the snapshot
   * (docs/namespace.md, "Retired authors"), so that a node bootstrapping
   * from it reads its peers' clocks. Each group's dot is covered by `clock`,
   * each author named once in all, at a seq `clock` covers.
   */
  retired?: SnapshotRetired
  sig: Uint8Array
}

/**
 * Version 3 of a snapshot root: what {@link SnapshotRoot} says per author
 * (its clock, tips and retirements) and its heads are in author blocks
 * ({@link SnapshotAuthors}) that the root links by CID, so the root's size
 * grows neither with the authors the namespace ever had nor with its
 * concurrent heads. Verified the same way: the signature covers the links,
 * each block is checked against its CID.
 */
export interface LinkedSnapshotRoot {
  v: 3
  author: string
  time: number
  count: number
  tree: CID
  /** The author blocks, in author order: each block's authors come after the previous block's. At least one. */
  authors: CID[]
  sig: Uint8Array
}

/** A snapshot root as signed, stored and sent: its per-author part inline (v1, v2) or linked (v3). */
export type SignedSnapshotRoot = SnapshotRoot | LinkedSnapshotRoot

/** What the author signs of a {@link SignedSnapshotRoot}: all of it but `sig`. */
export type SnapshotRootBody = Omit<SnapshotRoot, 'sig'> | Omit<LinkedSnapshotRoot, 'sig'>

/**
 * One author block of a {@link LinkedSnapshotRoot}: a run of the
 * snapshot's authors in ascending order, each with its counter and the CID
 * of its entry at that counter (its tip, when the snapshot holds it), the
 * retirements of these authors grouped by the entry (dot) that retired
 * them, and the heads these authors wrote — as {@link SnapshotRoot} has
 * them.
 */
export interface SnapshotAuthors {
  v: 1
  authors: Array<[author: string, seq: number, tip: CID | null]>
  retired: SnapshotRetired
  /** Heads by authors of this block: the head entry's author, seq and CID, in the order of their CIDs' text. */
  heads: Array<[author: string, seq: number, entry: CID]>
}

/** What a snapshot says per author, and its heads, whichever way its root carries them. */
export interface SnapshotAuthorPart {
  clock: VectorClock
  tips: Array<[author: string, entry: CID]>
  retired?: SnapshotRetired
  heads: CID[]
  /** The dot of each head, in the same order. */
  headDots: Dot[]
}

/** Gossiped on {@link NAMESPACE_TOPIC}: the sender's clock and heads, and its newest entries when small. */
export interface HeadsMessage {
  v: 1
  type: 'heads'
  clock: VectorClock
  heads: CID[]
  /** Encoded entries (each ≤ {@link MAX_ENTRY_BYTES}); may be empty. */
  entries: Uint8Array[]
}

/** Ask for the entries the requester lacks: those not covered by `clock`, in causal order. */
export interface PullRequest { v: 1, type: 'pull', id: number, clock: VectorClock, limit: number }
/** Ask for snapshot blocks by CID. */
export interface BlocksRequest { v: 1, type: 'blocks', id: number, cids: CID[] }
/** A sync request. */
/**
 * Anti-entropy between converged-looking peers (docs/namespace.md, "State
 * checks"): the asker's {@link headsDigest}; the answer says whether the
 * answerer's heads are the same and, when they are, the root of its current
 * state's snapshot tree (its nodes are then served by `blocks` requests).
 */
export interface StateRequest { v: 1, type: 'state', id: number, heads: Uint8Array }
export type SyncRequest = PullRequest | BlocksRequest | StateRequest

/** A page of entries in causal order; `more` when the requester should pull again. */
export interface EntriesResponse { v: 1, type: 'entries', id: number, clock: VectorClock, heads: CID[], entries: Uint8Array[], more: boolean }
/** The requester is behind the responder's pruned history: bootstrap from this snapshot, then pull. */
export interface SnapshotResponse { v: 1, type: 'snapshot', id: number, root: CID, clock: VectorClock }
/** Snapshot blocks, in the order asked; a missing one is absent from the list. */
export interface BlocksResponse { v: 1, type: 'blocks', id: number, blocks: Uint8Array[] }
/** The request failed. */
export interface SyncErrorResponse { v: 1, type: 'error', id: number, message: string }
/** A sync response. */
/** The answerer's heads are the asker's: `root` is the snapshot tree of its current state. */
export interface StateResponse { v: 1, type: 'state', id: number, heads: Uint8Array, root: CID }
/** The answerer's heads differ from the asker's (`heads`: its own digest): their states are not comparable. */
export interface UnlikeStateResponse { v: 1, type: 'unlike', id: number, heads: Uint8Array }
export type SyncResponse = EntriesResponse | SnapshotResponse | BlocksResponse | StateResponse | UnlikeStateResponse | SyncErrorResponse

/** Bytes of a {@link headsDigest}. */
export const HEADS_DIGEST_BYTES = 32

/** Re-exported: the error every codec of this module throws. */
export { InvalidMessageError }

/** Largest signature accepted in an entry or a snapshot root, in bytes. */
export const MAX_SIG_BYTES = 128
/** Longest `message` of a sync `error` response, in UTF-16 code units. */
export const MAX_SYNC_ERROR_MESSAGE = 1024
/** Most heads one list (gossip, `entries` response, snapshot root) may name. */
export const MAX_HEADS = 4096

/** Multicodec code of dag-cbor: entries and snapshot blocks. */
const DAG_CBOR = 0x71
/** Largest `mode` (permission bits, setuid/setgid/sticky included). */
export const MAX_MODE = 0o7777
export { MAX_TIME }
/** Longest policy text accepted before its grammar is checked (`replicas:16` is 11). */
const MAX_POLICY_LENGTH = 32

/**
 * True when `policy` is the canonical text of a durability policy: `none`,
 * `ec:K+M` or `replicas:N` as protocol/durability.ts parses them.
 */
export function isPinPolicy (policy: unknown): policy is string {
  return typeof policy === 'string' && policy.length <= MAX_POLICY_LENGTH && isPolicyText(policy)
}

/**
 * Canonical dag-cbor of the signed part of an entry: what its author signs
 * and what a verifier checks the signature against. A `sig` field on the
 * argument, if any, is ignored (so a full {@link LogEntry} may be passed).
 *
 * @throws {InvalidMessageError} when the body is not valid
 */
export function encodeEntryBody (body: EntryBody): Uint8Array {
  return encodeChecked(pickEntryBody(shape(body, 'entry body', ENTRY_BODY_FIELDS[entryVersion(body, 'entry body')], ['sig'])), MAX_ENTRY_BYTES, 'entry body')
}

/**
 * The signed part of an entry from its encoding: {@link encodeEntryBody} of
 * `entry`, the entry {@link decodeEntry} decoded from `bytes`. Canonical
 * bytes give it by dropping the `sig` field, with no encoding; other bytes
 * (a form the one-pass decoder does not take) have it encoded.
 * `sigField`, where {@link decodeEntryParts} found the signature in these
 * very bytes, spares parsing them again.
 *
 * @throws {InvalidMessageError} when the body is not valid (never for an entry decodeEntry returned)
 */
export function entryBodyOf (bytes: Uint8Array, entry: LogEntry, sigField?: FieldRange): Uint8Array {
  if (sigField !== undefined) return cutField(bytes, sigField)
  return withoutField(bytes, 'sig') ?? encodeEntryBody(entry)
}

const AUTHOR_KEY = new TextEncoder().encode('author')
const SEQ_KEY = new TextEncoder().encode('seq')
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The `author` and `seq` fields of an encoded entry (a dag-cbor map), read
 * without decoding the rest; undefined when the bytes are not a map with a
 * text `author` and an integer `seq` this reader can walk. Nothing is
 * checked: {@link decodeEntry} checks an entry (a pull uses this only to
 * choose what to ask for next).
 */
export function claimedDot (bytes: Uint8Array): [author: string, seq: number] | undefined {
  const r = new CborCursor(bytes)
  const fields = r.head()
  if (fields < 0 || r.type() !== 5) return undefined
  let author: string | undefined
  let seq: number | undefined
  for (let f = 0; f < fields; f++) {
    const length = r.head()
    if (length < 0 || r.type() !== 3 || r.pos + length > bytes.byteLength) return undefined
    const key = r.pos
    r.pos += length
    if (r.isText(AUTHOR_KEY, key, length)) {
      const n = r.head()
      if (n < 0 || r.type() !== 3 || r.pos + n > bytes.byteLength) return undefined
      try {
        author = strictUtf8.decode(bytes.subarray(r.pos, r.pos + n))
      } catch {
        return undefined
      }
      r.pos += n
    } else if (r.isText(SEQ_KEY, key, length)) {
      const n = r.head()
      if (n < 0 || r.type() !== 0 || !Number.isSafeInteger(n)) return undefined
      seq = n
    } else if (!r.skip()) {
      return undefined
    }
    if (author !== undefined && seq !== undefined) return [author, seq]
  }
  return undefined
}

/**
 * Encode a signed log entry (checked first): the bytes of its dag-cbor block.
 *
 * @throws {InvalidMessageError} when the entry is not valid or exceeds {@link MAX_ENTRY_BYTES}
 */
export function encodeEntry (entry: LogEntry): Uint8Array {
  return encodeChecked(pickEntry(entry), MAX_ENTRY_BYTES, 'entry')
}

/**
 * Decode and validate a log entry block. The bytes must be the canonical
 * encoding ({@link encodeEntry} of the result), so that an entry has exactly
 * one CID. The signature is not verified here.
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeEntry (bytes: Uint8Array): LogEntry {
  return decodeEntryParts(bytes).entry
}

/** An entry {@link decodeEntryParts} decoded, and where its signature lies in its bytes when it found it. */
export interface DecodedEntry {
  entry: LogEntry
  /** The `sig` field's place in the bytes (for {@link entryBodyOf}); absent when the decoder did not locate it. */
  sigField?: FieldRange
}

/**
 * {@link decodeEntry}, with where the signature lies in `bytes`, so that
 * {@link entryBodyOf} cuts the signed part out without parsing the bytes
 * again (a received entry's signature is checked over it).
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeEntryParts (bytes: Uint8Array): DecodedEntry {
  if (bytes instanceof Uint8Array && bytes.byteLength <= MAX_ENTRY_BYTES) {
    // canonical bytes decoded in one pass, to what dag-cbor decodes them to; the picked entry is that
    // value field for field (the checks never change what they take), so the bytes are its encoding.
    // Decoded from a copy of its own: its CIDs and signature are views of that copy, taken as they are
    const decoded = decodeCanonicalMap(new Uint8Array(bytes), 'sig')
    if (decoded !== NOT_CANONICAL) {
      picksViews = true
      try {
        return { entry: pickEntry(decoded.value), sigField: decoded.field }
      } finally {
        picksViews = false
      }
    }
  }
  return { entry: decodeCanonical(bytes, MAX_ENTRY_BYTES, 'entry', pickEntry) }
}

/**
 * Canonical dag-cbor of a snapshot root without its signature: what the
 * snapshot's author signs. A `sig` field on the argument, if any, is ignored.
 *
 * @throws {InvalidMessageError} when the root is not valid
 */
export function encodeSnapshotRootBody (root: SnapshotRootBody): Uint8Array {
  return encodeChecked(pickSnapshotRootBody(shape(root, 'snapshot root body', SNAPSHOT_ROOT_BODY_FIELDS[rootVersion(root, 'snapshot root body')], ['sig'])), MAX_SNAPSHOT_ROOT_BYTES, 'snapshot root body')
}

/**
 * Encode a signed snapshot root (checked first).
 *
 * @throws {InvalidMessageError} when the root is not valid or exceeds {@link MAX_SNAPSHOT_ROOT_BYTES}
 */
export function encodeSnapshotRoot (root: SignedSnapshotRoot): Uint8Array {
  return encodeChecked(pickSnapshotRoot(root), MAX_SNAPSHOT_ROOT_BYTES, 'snapshot root')
}

/**
 * Decode and validate a snapshot root block (canonical encoding only). The
 * signature is not verified here.
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeSnapshotRoot (bytes: Uint8Array): SignedSnapshotRoot {
  return decodeCanonical(bytes, MAX_SNAPSHOT_ROOT_BYTES, 'snapshot root', pickSnapshotRoot)
}

/**
 * Encode an author block of a v3 root (checked first).
 *
 * @throws {InvalidMessageError} when the block is not valid or exceeds {@link MAX_SNAPSHOT_BLOCK_BYTES}
 */
export function encodeSnapshotAuthors (block: SnapshotAuthors): Uint8Array {
  return encodeChecked(pickSnapshotAuthors(block), MAX_SNAPSHOT_BLOCK_BYTES, 'snapshot author block')
}

/**
 * Decode and validate an author block of a v3 root (canonical encoding
 * only): authors strictly ascending, each retired author one of the
 * block's, once, at a seq its counter covers. What needs the whole clock
 * (the retiring dots, the order across blocks) is checked by {@link
 * joinSnapshotAuthors}.
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeSnapshotAuthors (bytes: Uint8Array): SnapshotAuthors {
  return decodeCanonical(bytes, MAX_SNAPSHOT_BLOCK_BYTES, 'snapshot author block', pickSnapshotAuthors)
}

/**
 * The per-author part of a snapshot from its author blocks, in the root's
 * order: each block's authors after the previous block's, at most
 * {@link MAX_SNAPSHOT_AUTHORS} in all, every retiring dot covered by the
 * clock.
 *
 * @throws {InvalidMessageError} when the blocks do not make one valid part
 */
export function joinSnapshotAuthors (blocks: SnapshotAuthors[]): SnapshotAuthorPart {
  const clock: VectorClock = {}
  const tips: Array<[string, CID]> = []
  const retired: SnapshotRetired = []
  const heads: CID[] = []
  const headDots: Dot[] = []
  let previous: string | undefined
  let count = 0
  for (const block of blocks) {
    for (const [author, seq, tip] of block.authors) {
      if (previous !== undefined && !(previous < author)) fail(`snapshot author blocks not in strictly ascending author order at ${show(author)}`)
      previous = author
      if (++count > MAX_SNAPSHOT_AUTHORS) fail(`snapshot names more than ${MAX_SNAPSHOT_AUTHORS} authors`)
      clock[author] = seq
      if (tip !== null) tips.push([author, tip])
    }
    retired.push(...block.retired)
    for (const [author, seq, entry] of block.heads) {
      heads.push(entry)
      headDots.push([author, seq])
    }
  }
  for (const [[author, seq]] of retired) {
    if (!Object.hasOwn(clock, author) || clock[author] < seq) fail(`snapshot retiring dot [${show(author)}, ${seq}] is beyond the snapshot's clock`)
  }
  // each block's heads are distinct; across blocks their authors differ, and one entry has one author
  return retired.length > 0 ? { clock, tips, retired, heads, headDots } : { clock, tips, heads, headDots }
}

/**
 * A snapshot's per-author part cut into author blocks of at most `perBlock`
 * authors each, in ascending author order (the inverse of {@link
 * joinSnapshotAuthors}).
 */
export function splitSnapshotAuthors (part: SnapshotAuthorPart, perBlock: number): SnapshotAuthors[] {
  const tipOf = new Map(part.tips)
  const retiredBy = new Map<string, [Dot, number]>()
  for (const [by, authors] of part.retired ?? []) for (const [author, seq] of authors) retiredBy.set(author, [by, seq])
  const headsOf = new Map<string, Array<[string, number, CID]>>()
  for (const [i, [author, seq]] of part.headDots.entries()) {
    let list = headsOf.get(author)
    if (list === undefined) headsOf.set(author, list = [])
    list.push([author, seq, part.heads[i]])
  }
  const sorted = Object.keys(part.clock).sort()
  const out: SnapshotAuthors[] = []
  for (let i = 0; i < sorted.length; i += perBlock) {
    const block: SnapshotAuthors = { v: 1, authors: [], retired: [], heads: [] }
    const groups = new Map<string, [Dot, Array<[string, number]>]>()
    for (const author of sorted.slice(i, i + perBlock)) {
      block.authors.push([author, part.clock[author], tipOf.get(author) ?? null])
      block.heads.push(...headsOf.get(author) ?? [])
      const r = retiredBy.get(author)
      if (r === undefined) continue
      const key = dotKey(r[0][0], r[0][1])
      let group = groups.get(key)
      if (group === undefined) groups.set(key, group = [r[0], []])
      group[1].push([author, r[1]])
    }
    block.retired = [...groups.values()]
    block.heads.sort((x, y) => cidText(x[2]) < cidText(y[2]) ? -1 : 1)
    out.push(block)
  }
  return out
}

/**
 * Encode a gossip message of {@link NAMESPACE_TOPIC} (checked first).
 *
 * @throws {InvalidMessageError} when the message is not valid or exceeds {@link MAX_SYNC_MESSAGE_BYTES}
 */
export function encodeHeadsMessage (message: HeadsMessage): Uint8Array {
  const picked = pickHeadsMessage(message)
  picked.clock = inKeyOrder(picked.clock)
  return encodeChecked(picked, MAX_SYNC_MESSAGE_BYTES, 'heads message')
}

/**
 * Decode and validate a gossip message of {@link NAMESPACE_TOPIC}. The
 * entries it carries stay encoded: decode each with {@link decodeEntry}.
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeHeadsMessage (bytes: Uint8Array): HeadsMessage {
  return pickHeadsMessage(decodeBytes(bytes, MAX_SYNC_MESSAGE_BYTES, 'heads message'))
}

/**
 * What two replicas compare to learn whether they applied the same entries:
 * sha-256 over their heads' CID bytes, in ascending order of the CIDs' text,
 * then their clocks' counters in ascending order of author. The heads of a
 * Merkle DAG name its whole history; the clock says which of it a replica
 * applied (one that does not trust an author skips its entries under the
 * same heads). Equal digests: replicas that must hold equal states.
 */
export function headsDigest (heads: Iterable<CID>, clock: Readonly<Record<string, number>>): Uint8Array {
  const sorted = [...heads].map(h => [h.toString(), h.bytes] as const).sort((x, y) => x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)
  const hash = createHash('sha256')
  for (const [, bytes] of sorted) hash.update(bytes)
  for (const author of Object.keys(clock).sort()) if (clock[author] > 0) hash.update(`\n${author}:${clock[author]}`)
  return new Uint8Array(hash.digest())
}

/**
 * Encode a request of {@link SYNC_PROTOCOL} (checked first).
 *
 * @throws {InvalidMessageError} when the request is not valid or exceeds {@link MAX_SYNC_MESSAGE_BYTES}
 */
export function encodeSyncRequest (message: SyncRequest): Uint8Array {
  const picked = pickSyncRequest(message)
  if (picked.type === 'pull') picked.clock = inKeyOrder(picked.clock)
  return encodeChecked(picked, MAX_SYNC_MESSAGE_BYTES, 'sync request')
}

/**
 * Decode and validate a request of {@link SYNC_PROTOCOL}.
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeSyncRequest (bytes: Uint8Array): SyncRequest {
  return pickSyncRequest(decodeBytes(bytes, MAX_SYNC_MESSAGE_BYTES, 'sync request'))
}

/**
 * Encode a response of {@link SYNC_PROTOCOL} (checked first).
 *
 * @throws {InvalidMessageError} when the response is not valid or exceeds {@link MAX_SYNC_MESSAGE_BYTES}
 */
export function encodeSyncResponse (message: SyncResponse): Uint8Array {
  const picked = pickSyncResponse(message)
  if (picked.type === 'entries' || picked.type === 'snapshot') picked.clock = inKeyOrder(picked.clock)
  return encodeChecked(picked, MAX_SYNC_MESSAGE_BYTES, 'sync response')
}

/**
 * Decode and validate a response of {@link SYNC_PROTOCOL}. Entries and
 * blocks stay encoded (copies of the frame's bytes).
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeSyncResponse (bytes: Uint8Array): SyncResponse {
  return pickSyncResponse(decodeBytes(bytes, MAX_SYNC_MESSAGE_BYTES, 'sync response'))
}

// ---------------------------------------------------------------------------
// framing

function fail (reason: string): never {
  throw new InvalidMessageError(`invalid namespace message: ${reason}`)
}

function checkSize (bytes: Uint8Array, max: number, what: string): void {
  if (bytes.byteLength > max) fail(`${what} of ${bytes.byteLength} bytes > ${max}`)
}

function decodeBytes (bytes: Uint8Array, max: number, what: string): unknown {
  if (!(bytes instanceof Uint8Array)) fail(`${what} is not bytes`)
  checkSize(bytes, max, what)
  // what a peer sends is canonical almost always: decoded in one pass to the value dag-cbor gives (no tokens)
  const value = decodeCanonicalDagCbor(bytes)
  if (value !== NOT_CANONICAL) return value
  try {
    return dagCbor.decode(bytes)
  } catch (err: any) {
    fail(`${what} is not dag-cbor (${String(err?.message ?? err)})`)
  }
}

/** Decode, validate, and require the bytes to be the canonical encoding of the result. */
function decodeCanonical<T> (bytes: Uint8Array, max: number, what: string, pick: (value: unknown) => T): T {
  const value = pick(decodeBytes(bytes, max, what))
  if (!equals(encodeChecked(value, max, what), bytes)) fail(`${what} is not canonical dag-cbor`)
  return value
}

/** Encode a validated value and check its size. */
function encodeChecked (value: unknown, max: number, what: string): Uint8Array {
  let bytes: Uint8Array
  try {
    bytes = dagCbor.encode(value)
  } catch (err: any) {
    fail(`${what} is not encodable (${String(err?.message ?? err)})`)
  }
  checkSize(bytes, max, what)
  return plainBytes(bytes)
}

// ---------------------------------------------------------------------------
// field checks: each validates one untrusted value and returns a fresh copy

const check = fieldChecks(fail)
const { shape, int, bool, list, path } = check

function version (value: unknown, what: string): 1 {
  return check.version(value, what, NAMESPACE_VERSION)
}

/** A string that survives UTF-8 (no lone surrogates): every string of the namespace ends up in dag-cbor. */
function text (value: unknown, what: string, max: number): string {
  return check.wellFormedText(value, what, max)
}

function peerId (value: unknown, what: string): string {
  return check.peerId(value, what, MAX_PEER_ID_LENGTH)
}

/**
 * True while {@link decodeEntry} picks a value its one-pass decoder made
 * from a copy of the input that nothing else holds: its byte strings and
 * CIDs are views of that copy and are taken as they are, not copied once
 * more (a signature and two or three CIDs for every entry received).
 * Picking is synchronous, so no other decode sees it set.
 */
let picksViews = false

/** A copy of a byte string of minBytes..maxBytes (decoded values never share the input's memory). */
function bytes (value: unknown, what: string, minBytes: number, maxBytes: number): Uint8Array {
  return check.bytes(value, what, minBytes, maxBytes, { view: picksViews })
}

/** The rules {@link cid} checks by, made once rather than for every CID of every entry: [copied, view]. */
const ANY_CID_RULES: readonly [CidRule, CidRule] = [{ view: false }, { view: true }]
const DAG_CBOR_CID_RULES: readonly [CidRule, CidRule] = [{ codecs: [DAG_CBOR], view: false }, { codecs: [DAG_CBOR], view: true }]

/** A fresh sha2-256 CID, of the given codec when one is given. */
function cid (value: unknown, what: string, codec?: number): CID {
  const rules = codec === undefined ? ANY_CID_RULES : codec === DAG_CBOR ? DAG_CBOR_CID_RULES : undefined
  return check.cid(value, what, rules !== undefined ? rules[picksViews ? 1 : 0] : { codecs: [codec as number], view: picksViews })
}

/** Longest list of CIDs whose distinctness is checked pair by pair (longer lists: by their text in a set). */
const DISTINCT_BY_PAIRS = 16

function cidList (value: unknown, what: string, min: number, max: number, codec: number | undefined, distinct: boolean): CID[] {
  const items = list(value, what, min, max).map(c => cid(c, `${what} item`, codec))
  if (distinct && items.length > 1) {
    if (items.length <= DISTINCT_BY_PAIRS) {
      // a few: compared pair by pair, with no text made of each
      for (let i = 1; i < items.length; i++) {
        for (let j = 0; j < i; j++) if (equals(items[i].bytes, items[j].bytes)) fail(`${what} names ${cidText(items[i])} twice`)
      }
    } else {
      const seen = new Set<string>()
      for (const c of items) {
        const key = cidText(c)
        if (seen.has(key)) fail(`${what} names ${key} twice`)
        seen.add(key)
      }
    }
  }
  return items
}

/** A list of byte strings (encoded entries or blocks), bounded in count, each size and total size. */
function byteList (value: unknown, what: string, maxItems: number, maxBytes: number): Uint8Array[] {
  const items = list(value, what, 0, maxItems)
  let total = 0
  return items.map(item => {
    const copy = bytes(item, `${what} item`, 0, maxBytes)
    total += copy.byteLength
    if (total > MAX_SYNC_MESSAGE_BYTES) fail(`${what} total more than ${MAX_SYNC_MESSAGE_BYTES} bytes`)
    return copy
  })
}

/**
 * A clock with `minAuthors` or more authors. Counters are ≥ 1, except in
 * clocks on the wire (`wire`): there a 0 names an author the sender holds
 * nothing of, which a receiver would otherwise read as retired
 * (docs/namespace.md, "Retired authors").
 */
function clock (value: unknown, what: string, minAuthors: number, wire = false): VectorClock {
  if (!isPlainMap(value)) fail(`${what} is not a map`)
  const authors = Object.keys(value)
  if (authors.length < minAuthors || authors.length > MAX_CLOCK_AUTHORS) fail(`${what} has ${authors.length} authors (${minAuthors}..${MAX_CLOCK_AUTHORS} allowed)`)
  // checked where it lies: a clock names up to thousands of authors, and every gossip message,
  // pull request and answer carries one. It is taken as it is when it is an ordinary object
  // whose counters need no change: what a decoder made, or what an encoder encodes at once.
  let same = Object.getPrototypeOf(value) === Object.prototype
  for (const author of authors) {
    peerId(author, `${what} author`)
    const n = value[author]
    if (int(n, `${what} value`, wire ? 0 : 1) !== n || Object.is(n, -0)) same = false
  }
  if (same) return value as VectorClock
  const out: VectorClock = {}
  for (const author of authors) out[author] = int(value[author], `${what} value`, wire ? 0 : 1)
  return out
}

function dot (value: unknown, what: string): Dot {
  const [author, seq] = check.pair(value, what, ['author', 'seq'])
  return [peerId(author, `${what} author`), int(seq, `${what} seq`, 1)]
}

/** `${seq}:${author}`: an unambiguous key of a dot (seq holds no ':'). */
function dotKey (author: string, seq: number): string {
  return `${seq}:${author}`
}

/**
 * What an entry's past is known to cover when it is decoded: a v1 entry's
 * clock covers exactly its past; a v2 entry only says that its author's
 * earlier entries are in it (the rest is checked against the receiver's
 * state when the entry is applied).
 */
type PastCheck = (d: Dot) => boolean

/** The dots an op replaces: distinct, in the entry's past as far as it can be told here, never the entry's own dot. */
function replaces (value: unknown, author: string, seq: number, inPast: PastCheck): Dot[] {
  const items = list(value, 'replaces', 0, MAX_REPLACES)
  // one dot (or none) cannot repeat: no set for it (every put of a new path)
  const seen = items.length > 1 ? new Set<string>() : undefined
  return items.map(item => {
    const d = dot(item, 'replaced dot')
    if (seen !== undefined) {
      const key = dotKey(d[0], d[1])
      if (seen.has(key)) fail(`replaces names [${show(d[0])}, ${d[1]}] twice`)
      seen.add(key)
    }
    if (d[0] === author && d[1] === seq) fail('an op replaces its own entry')
    if (!inPast(d)) fail(`replaced dot [${show(d[0])}, ${d[1]}] is not in the entry's past`)
    return d
  })
}

// ---------------------------------------------------------------------------
// structures

/**
 * Check a pin in wire form (CIDs as CID values) by the rules log entries obey.
 *
 * @throws {InvalidMessageError} naming the first bad field
 */
export function decodePin (value: unknown): Pin {
  return pin(value, 'pin')
}

/** A pin: a canonical policy, and a dag-cbor manifest CID only with a coded policy (`ec:`, or `replicas:N` with N ≥ 2, coded as 1+(N-1)). */
function pin (value: unknown, what: string): Pin {
  const f = shape(value, what, ['policy'], ['manifest', 'cold'])
  const policy = text(f.policy, `${what} policy`, MAX_POLICY_LENGTH)
  if (!isPinPolicy(policy)) fail(`${what} policy ${show(policy)} is not a canonical durability policy`)
  const out: Pin = { policy }
  if (isSet(f, 'manifest')) {
    if (!isCodedPolicy(policy)) fail(`${what} has a manifest but policy ${show(policy)} is not coded (ec: or replicas:N with N >= 2)`)
    out.manifest = cid(f.manifest, `${what} manifest`, DAG_CBOR)
  }
  if (isSet(f, 'cold')) out.cold = coldCopy(f.cold, `${what} cold`)
  return out
}

/** Longest endpoint URL, region, bucket name and object key a cold copy may name. */
const MAX_ENDPOINT_LENGTH = 512
const MAX_REGION_LENGTH = 64
const MAX_BUCKET_LENGTH = 255
const MAX_OBJECT_KEY_LENGTH = 1024

function coldCopy (value: unknown, what: string): ColdCopy {
  const f = shape(value, what, ['endpoint', 'bucket', 'carKey', 'carSize', 'indexKey', 'indexSize', 'indexCid', 'blocks', 'blockBytes'], ['region'])
  const endpoint = text(f.endpoint, `${what} endpoint`, MAX_ENDPOINT_LENGTH)
  if (!/^https?:\/\/[^\s/]+$/.test(endpoint)) fail(`${what} endpoint ${show(endpoint)} is not http(s)://host[:port]`)
  const nonEmpty = (v: unknown, name: string, max: number): string => {
    const t = text(v, `${what} ${name}`, max)
    if (t.length === 0) fail(`${what} ${name} is empty`)
    return t
  }
  const out: ColdCopy = {
    endpoint,
    bucket: nonEmpty(f.bucket, 'bucket', MAX_BUCKET_LENGTH),
    carKey: nonEmpty(f.carKey, 'carKey', MAX_OBJECT_KEY_LENGTH),
    carSize: int(f.carSize, `${what} carSize`, 0),
    indexKey: nonEmpty(f.indexKey, 'indexKey', MAX_OBJECT_KEY_LENGTH),
    indexSize: int(f.indexSize, `${what} indexSize`, 0),
    indexCid: cid(f.indexCid, `${what} indexCid`, DAG_CBOR),
    blocks: int(f.blocks, `${what} blocks`, 0),
    blockBytes: int(f.blockBytes, `${what} blockBytes`, 0)
  }
  if (isSet(f, 'region')) out.region = nonEmpty(f.region, 'region', MAX_REGION_LENGTH)
  return out
}

const OP_FIELDS: Record<Op['op'], readonly string[]> = {
  put: ['op', 'path', 'cid', 'size', 'mode', 'mtime', 'replaces'],
  mkdir: ['op', 'path', 'mode', 'mtime', 'replaces'],
  del: ['op', 'path', 'replaces'],
  retire: ['op', 'author', 'seq']
}
const OP_OPTIONAL_FIELDS: Record<Op['op'], readonly string[]> = { put: ['pin'], mkdir: [], del: [], retire: [] }

function pickOp (value: unknown, author: string, seq: number, entryClock: PastCheck, v: EntryBody['v']): Op {
  if (!isPlainMap(value)) fail('op is not a map')
  const kind = value.op
  if (typeof kind !== 'string' || !Object.hasOwn(OP_FIELDS, kind)) fail(`unknown op ${show(kind)}`)
  const f = shape(value, `${kind} op`, OP_FIELDS[kind as Op['op']], OP_OPTIONAL_FIELDS[kind as Op['op']])
  if (kind === 'retire') {
    if (v !== 2) fail('a retire op in a v1 entry')
    const retired = peerId(f.author, 'retired author')
    if (retired === author) fail('an entry retires its own author')
    return { op: 'retire', author: retired, seq: int(f.seq, 'retired seq', 1) }
  }
  const p = path(f.path, 'op path')
  switch (kind as Op['op']) {
    case 'put': {
      const put: PutOp = {
        op: 'put',
        path: p,
        cid: cid(f.cid, 'put cid'),
        size: int(f.size, 'put size', 0),
        mode: int(f.mode, 'put mode', 0, MAX_MODE),
        mtime: int(f.mtime, 'put mtime', 0, MAX_TIME),
        replaces: replaces(f.replaces, author, seq, entryClock)
      }
      if (isSet(f, 'pin')) put.pin = pin(f.pin, 'put pin')
      return put
    }
    case 'mkdir': return {
      op: 'mkdir',
      path: p,
      mode: int(f.mode, 'mkdir mode', 0, MAX_MODE),
      mtime: int(f.mtime, 'mkdir mtime', 0, MAX_TIME),
      replaces: replaces(f.replaces, author, seq, entryClock)
    }
    default: return { op: 'del', path: p, replaces: replaces(f.replaces, author, seq, entryClock) }
  }
}

const ENTRY_BODY_FIELDS: Record<EntryBody['v'], readonly string[]> = {
  1: ['v', 'author', 'seq', 'time', 'clock', 'parents', 'ops'],
  2: ['v', 'author', 'seq', 'time', 'parents', 'deps', 'ops']
}

/** The entry version a value claims (1 or 2), checked before its fields. */
function entryVersion (value: unknown, what: string): EntryBody['v'] {
  if (!isPlainMap(value)) fail(`${what} is not a map`)
  const v = value.v
  if (v !== 1 && v !== 2) fail(`${what} has unsupported version ${show(v)}`)
  return v
}

/** Validate and copy the body fields of an entry whose key set was already checked. */
function pickEntryBody (f: Fields): EntryBody {
  const v = entryVersion(f, 'entry')
  const author = peerId(f.author, 'entry author')
  const seq = int(f.seq, 'entry seq', 1)
  const time = int(f.time, 'entry time', 0, MAX_TIME)
  const parents = cidList(f.parents, 'entry parents', 0, MAX_PARENTS, DAG_CBOR, true)
  let inPast: PastCheck
  let versioned: { v: 1, clock: VectorClock } | { v: 2, deps: Dot[] }
  if (v === 1) {
    const entryClock = clock(f.clock, 'entry clock', 1)
    if (entryClock[author] !== seq) fail(`entry clock[author] is ${show(entryClock[author])}, not seq ${seq}`)
    inPast = d => (Object.hasOwn(entryClock, d[0]) ? entryClock[d[0]] : 0) >= d[1]
    versioned = { v: 1, clock: entryClock }
  } else {
    const deps = entryDeps(f.deps, author, seq, parents.length)
    inPast = d => d[0] !== author || d[1] < seq
    versioned = { v: 2, deps }
  }
  const items = list(f.ops, 'entry ops', 1, MAX_OPS)
  // one op cannot repeat a path or an author: no sets for it (nearly every entry)
  const seen = items.length > 1 ? new Set<string>() : undefined
  const retired = items.length > 1 ? new Set<string>() : undefined
  const ops = items.map(item => {
    const op = pickOp(item, author, seq, inPast, v)
    if (seen === undefined || retired === undefined) return op
    const names = op.op === 'retire' ? retired : seen
    const key = op.op === 'retire' ? op.author : op.path
    if (names.has(key)) fail(`entry has two ops on ${show(key)}`)
    names.add(key)
    return op
  })
  // field order as the types declare it (dag-cbor sorts keys anyway)
  return versioned.v === 1
    ? { v: 1, author, seq, time, clock: versioned.clock, parents, ops }
    : { v: 2, author, seq, time, parents, deps: versioned.deps, ops }
}

/** A v2 entry's parent dots: one per parent, distinct, its author's own only below its seq. */
function entryDeps (value: unknown, author: string, seq: number, parents: number): Dot[] {
  const items = list(value, 'entry deps', 0, MAX_PARENTS)
  // one dep (or none) cannot repeat: no set for it
  const seen = items.length > 1 ? new Set<string>() : undefined
  const deps = items.map(item => {
    const d = dot(item, 'entry dep')
    if (seen !== undefined) {
      const key = dotKey(d[0], d[1])
      if (seen.has(key)) fail(`entry deps name [${show(d[0])}, ${d[1]}] twice`)
      seen.add(key)
    }
    if (d[0] === author && d[1] >= seq) fail(`entry dep [${show(d[0])}, ${d[1]}] is not before the entry's own seq ${seq}`)
    return d
  })
  if (deps.length !== parents) fail(`entry has ${parents} parents but ${deps.length} deps`)
  return deps
}

/** The fields of a signed entry of each version (its body's and `sig`). */
const ENTRY_FIELDS: Record<EntryBody['v'], readonly string[]> = {
  1: [...ENTRY_BODY_FIELDS[1], 'sig'],
  2: [...ENTRY_BODY_FIELDS[2], 'sig']
}

function pickEntry (value: unknown): LogEntry {
  const f = shape(value, 'entry', ENTRY_FIELDS[entryVersion(value, 'entry')])
  // the body is a fresh object of pickEntryBody's: the signature is added to it rather than both copied into another
  const entry = pickEntryBody(f) as LogEntry
  entry.sig = bytes(f.sig, 'entry sig', 1, MAX_SIG_BYTES)
  return entry
}

const SNAPSHOT_ROOT_BODY_FIELDS: Record<SignedSnapshotRoot['v'], readonly string[]> = {
  1: ['v', 'author', 'time', 'clock', 'heads', 'headDots', 'count', 'tree', 'tips'],
  2: ['v', 'author', 'time', 'clock', 'heads', 'headDots', 'count', 'tree', 'tips', 'retired'],
  3: ['v', 'author', 'time', 'count', 'tree', 'authors']
}

/** The version a snapshot root claims (1, 2 or 3), checked before its fields. */
function rootVersion (value: unknown, what: string): SignedSnapshotRoot['v'] {
  if (!isPlainMap(value)) fail(`${what} is not a map`)
  const v = value.v
  if (v !== 1 && v !== 2 && v !== 3) fail(`${what} has unsupported version ${show(v)}`)
  return v
}

/** The fields every version of a root has. */
function pickRootCommon (f: Fields): Omit<LinkedSnapshotRoot, 'v' | 'authors' | 'sig'> {
  return {
    author: peerId(f.author, 'snapshot author'),
    time: int(f.time, 'snapshot time', 0, MAX_TIME),
    count: int(f.count, 'snapshot count', 0),
    tree: cid(f.tree, 'snapshot tree', DAG_CBOR)
  }
}

function pickSnapshotRootBody (f: Fields): SnapshotRootBody {
  const v = rootVersion(f, 'snapshot root')
  if (v === 3) return { v, ...pickRootCommon(f), authors: cidList(f.authors, 'snapshot author blocks', 1, MAX_SNAPSHOT_AUTHOR_BLOCKS, DAG_CBOR, true) }
  const out: Omit<SnapshotRoot, 'sig'> = {
    v,
    ...pickRootCommon(f),
    clock: clock(f.clock, 'snapshot clock', 0),
    heads: cidList(f.heads, 'snapshot heads', 0, MAX_HEADS, DAG_CBOR, true),
    headDots: list(f.headDots, 'snapshot head dots', 0, MAX_HEADS).map(d => dot(d, 'snapshot head dot')),
    tips: [] as Array<[string, CID]>
  }
  if (out.headDots.length !== out.heads.length) fail(`snapshot has ${out.heads.length} heads but ${out.headDots.length} head dots`)
  let previous: string | undefined
  for (const item of list(f.tips, 'snapshot tips', 0, MAX_CLOCK_AUTHORS)) {
    const [a, c] = check.pair(item, 'snapshot tip', ['author', 'entry'])
    const author = peerId(a, 'snapshot tip author')
    if (previous !== undefined && !(previous < author)) fail(`snapshot tips not in strictly ascending author order at ${show(author)}`)
    previous = author
    if (!Object.hasOwn(out.clock, author)) fail(`snapshot tip for ${show(author)}, an author its clock does not name`)
    out.tips.push([author, cid(c, 'snapshot tip entry', DAG_CBOR)])
  }
  if (v === 2) out.retired = snapshotRetired(f.retired, out.clock, 1)
  return out
}

/**
 * Retirements (of a v2 root, or of a v3 author block, whose retiring dots
 * {@link joinSnapshotAuthors} checks against the whole clock): groups by
 * distinct dots, each author once in all, at a seq `rootClock` covers, at
 * least `min` groups.
 */
function snapshotRetired (value: unknown, rootClock: VectorClock, min: number, dotsLater = false): SnapshotRetired {
  const dots = new Set<string>()
  const authors = new Set<string>()
  const covered = (author: string, seq: number): boolean => Object.hasOwn(rootClock, author) && rootClock[author] >= seq
  const out = list(value, 'snapshot retired', min, MAX_CLOCK_AUTHORS).map(item => {
    const [d, named] = check.pair(item, 'snapshot retired group', ['dot', 'authors'])
    const by = dot(d, 'snapshot retiring dot')
    const key = dotKey(by[0], by[1])
    if (dots.has(key)) fail(`snapshot retired names the dot [${show(by[0])}, ${by[1]}] twice`)
    dots.add(key)
    if (!dotsLater && !covered(by[0], by[1])) fail(`snapshot retiring dot [${show(by[0])}, ${by[1]}] is beyond the snapshot's clock`)
    const group = list(named, 'snapshot retired authors', 1, MAX_CLOCK_AUTHORS).map(a => {
      const [author, seq] = dot(a, 'snapshot retired author')
      if (authors.has(author)) fail(`snapshot retires ${show(author)} twice`)
      authors.add(author)
      if (!covered(author, seq)) fail(`snapshot retires ${show(author)} at ${seq}, beyond the snapshot's clock`)
      return [author, seq] as [string, number]
    })
    return [by, group] as [Dot, Array<[string, number]>]
  })
  return out
}

function pickSnapshotRoot (value: unknown): SignedSnapshotRoot {
  const f = shape(value, 'snapshot root', [...SNAPSHOT_ROOT_BODY_FIELDS[rootVersion(value, 'snapshot root')], 'sig'])
  return { ...pickSnapshotRootBody(f), sig: bytes(f.sig, 'snapshot sig', 1, MAX_SIG_BYTES) }
}

/** Most authors one author block may name: what fits a snapshot block at ~100 bytes an author, with room. */
const MAX_BLOCK_AUTHORS = 16_384

function pickSnapshotAuthors (value: unknown): SnapshotAuthors {
  const f = shape(value, 'snapshot author block', ['v', 'authors', 'retired', 'heads'])
  if (f.v !== 1) fail(`snapshot author block has unsupported version ${show(f.v)}`)
  const clockOfBlock: VectorClock = {}
  let previous: string | undefined
  const authors = list(f.authors, 'snapshot block authors', 1, MAX_BLOCK_AUTHORS).map(item => {
    if (!Array.isArray(item) || item.length !== 3) fail('snapshot block author is not a triple [author, seq, tip]')
    const [a, n, t] = item as unknown[]
    const author = peerId(a, 'snapshot block author')
    if (previous !== undefined && !(previous < author)) fail(`snapshot block authors not in strictly ascending order at ${show(author)}`)
    previous = author
    const seq = int(n, 'snapshot block author seq', 1)
    clockOfBlock[author] = seq
    return [author, seq, t === null ? null : cid(t, 'snapshot block tip', DAG_CBOR)] as [string, number, CID | null]
  })
  let last: string | undefined
  const heads = list(f.heads, 'snapshot block heads', 0, MAX_BLOCK_AUTHORS * 4).map(item => {
    if (!Array.isArray(item) || item.length !== 3) fail('snapshot block head is not a triple [author, seq, entry]')
    const [author, seq] = dot([item[0], item[1]], 'snapshot block head')
    if (!Object.hasOwn(clockOfBlock, author) || clockOfBlock[author] < seq) fail(`snapshot block head [${show(author)}, ${seq}] is not by one of its authors within its counter`)
    const entry = cid(item[2], 'snapshot block head entry', DAG_CBOR)
    const text = cidText(entry)
    if (last !== undefined && !(last < text)) fail(`snapshot block heads not in strictly ascending order of their CIDs at ${text}`)
    last = text
    return [author, seq, entry] as [string, number, CID]
  })
  return { v: 1, authors, retired: snapshotRetired(f.retired, clockOfBlock, 0, true), heads }
}

/** Check the envelope (version, known type, exact key set with `id` when `withId`); returns the type. */
function envelope (value: unknown, what: string, shapes: Record<string, readonly string[]>, withId: boolean): string {
  if (!isPlainMap(value)) fail(`${what} is not a map`)
  version(value.v, what)
  const type = value.type
  if (typeof type !== 'string' || !Object.hasOwn(shapes, type)) fail(`unknown ${what} type ${show(type)}`)
  shape(value, `${type} ${what}`, ['v', 'type', ...(withId ? ['id'] : []), ...shapes[type]])
  return type
}

const HEADS_SHAPES = { heads: ['clock', 'heads', 'entries'] } as const

function pickHeadsMessage (value: unknown): HeadsMessage {
  envelope(value, 'heads message', HEADS_SHAPES, false)
  const f = value as Fields
  return {
    v: 1,
    type: 'heads',
    clock: clock(f.clock, 'heads clock', 0, true),
    heads: cidList(f.heads, 'heads', 0, MAX_HEADS, DAG_CBOR, true),
    entries: byteList(f.entries, 'heads entries', MAX_BATCH_ENTRIES, MAX_ENTRY_BYTES)
  }
}

const REQUEST_SHAPES = { pull: ['clock', 'limit'], blocks: ['cids'], state: ['heads'] } as const

function pickSyncRequest (value: unknown): SyncRequest {
  const type = envelope(value, 'sync request', REQUEST_SHAPES, true)
  const f = value as Fields
  const id = int(f.id, 'id', 0)
  if (type === 'pull') {
    return { v: 1, type, id, clock: clock(f.clock, 'pull clock', 0, true), limit: int(f.limit, 'pull limit', 1, MAX_BATCH_ENTRIES) }
  }
  if (type === 'state') return { v: 1, type, id, heads: headsDigestField(f.heads) }
  return { v: 1, type: 'blocks', id, cids: cidList(f.cids, 'blocks cids', 1, MAX_BLOCKS_WANT, DAG_CBOR, false) }
}

const RESPONSE_SHAPES = { entries: ['clock', 'heads', 'entries', 'more'], snapshot: ['root', 'clock'], blocks: ['blocks'], state: ['heads', 'root'], unlike: ['heads'], error: ['message'] } as const

function headsDigestField (value: unknown): Uint8Array {
  return check.bytes(value, 'heads digest', HEADS_DIGEST_BYTES, HEADS_DIGEST_BYTES)
}

function pickSyncResponse (value: unknown): SyncResponse {
  const type = envelope(value, 'sync response', RESPONSE_SHAPES, true)
  const f = value as Fields
  const id = int(f.id, 'id', 0)
  switch (type) {
    case 'entries': return {
      v: 1,
      type,
      id,
      clock: clock(f.clock, 'entries clock', 0, true),
      heads: cidList(f.heads, 'entries heads', 0, MAX_HEADS, DAG_CBOR, true),
      entries: byteList(f.entries, 'entries', MAX_BATCH_ENTRIES, MAX_ENTRY_BYTES),
      more: bool(f.more, 'more')
    }
    case 'snapshot': return { v: 1, type, id, root: cid(f.root, 'snapshot root', DAG_CBOR), clock: clock(f.clock, 'snapshot clock', 1, true) }
    case 'blocks': return { v: 1, type, id, blocks: byteList(f.blocks, 'blocks', MAX_BLOCKS_WANT, MAX_SNAPSHOT_ROOT_BYTES) }
    case 'state': return { v: 1, type, id, heads: headsDigestField(f.heads), root: cid(f.root, 'state root', DAG_CBOR) }
    case 'unlike': return { v: 1, type, id, heads: headsDigestField(f.heads) }
    default: return { v: 1, type: 'error', id, message: text(f.message, 'error message', MAX_SYNC_ERROR_MESSAGE) }
  }
}
