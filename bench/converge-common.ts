/**
 * What the convergence benches share: the write records and gossip payloads
 * they send, the seeded topology, percentiles, the watcher that times
 * when a path becomes visible on a replica, and the signed history the
 * bootstrap and receive benches (converge.ts, namespace-receive.ts) apply. Copied from bench/converge.ts
 * (which keeps its own copies for now) for bench/converge-procs.ts and its
 * child bench/converge-node.ts, so that both beds write and measure alike.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from '../node/blocks/verify.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { cborCID, signerFromKey, type Replica } from '../node/namespace/index.js'
import { encodeEntry, encodeEntryBody, type EntryBody, type Op } from '../protocol/namespace.js'
import type { VectorClock } from '../node/namespace/clock.js'

/** The ceiling's gossip topic (every node subscribes). */
export const TEST_TOPIC = '/bench/converge/1.0.0'

/**
 * Milliseconds on CLOCK_MONOTONIC (`process.hrtime`): the same clock in every
 * process of one Linux machine, so child processes can stamp events for
 * their parent.
 */
export function monoMs (): number {
  return Number(process.hrtime.bigint()) / 1e6
}

/** Nearest-rank percentile (p in 0..100) of a list; NaN when empty. */
export function pct (xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p / 100 * s.length) - 1))]
}

/** mulberry32: a seeded PRNG for the topology. */
export function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * The links of the bench swarm, each once, in dial order: a star on node 0
 * plus `links` random links per other node, or a full mesh.
 */
export function topology (nodes: number, kind: 'star' | 'mesh', links: number, seed: number): Array<[number, number]> {
  const rand = seeded(seed)
  const seen = new Set<string>()
  const out: Array<[number, number]> = []
  const link = (a: number, b: number): void => {
    const k = a < b ? `${a}-${b}` : `${b}-${a}`
    if (a === b || seen.has(k)) return
    seen.add(k)
    out.push([a, b])
  }
  if (kind === 'mesh') {
    for (let a = 0; a < nodes; a++) for (let b = a + 1; b < nodes; b++) link(a, b)
  } else {
    for (let a = 1; a < nodes; a++) link(a, 0)
    for (let a = 1; a < nodes; a++) for (let k = 0; k < links; k++) link(a, 1 + Math.floor(rand() * (nodes - 1)))
  }
  return out
}

/** The content CID of the `i`-th written file (raw, sha-256 of a made-up text). */
export function rawCid (i: number): CID {
  return CID.createV1(0x55, Digest.create(0x12, sha256(new TextEncoder().encode(`bench content ${i}`))))
}

/** The record the `i`-th write puts. */
export function fileRecord (i: number): { cid: string, size: number, mode: number, mtime: number } {
  return { cid: rawCid(i).toString(), size: 1000 + Math.abs(i * 7919) % 1_000_000, mode: 0o644, mtime: Date.now() }
}

/** A gossip payload of `size` bytes: `kind` in byte 0, `id` (u32) in bytes 1-4. */
export function payload (size: number, kind: number, id: number): Uint8Array {
  const data = new Uint8Array(Math.max(8, size))
  for (let i = 5; i < data.length; i++) data[i] = (i * 131 + id) & 0xff
  data[0] = kind
  new DataView(data.buffer).setUint32(1, id)
  return data
}

/** The id of a {@link payload}, or undefined when too short. */
export function payloadId (data: Uint8Array): number | undefined {
  return data.byteLength < 5 ? undefined : new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1)
}

/**
 * Finds paths on one replica as soon as they become visible: every
 * onRemoteChange triggers lookups of the paths still awaited (in parallel,
 * each timed by `now()` when its lookup resolves). {@link poll}, called on
 * a slow timer, backs them up and counts what it saw first.
 */
export class Watcher {
  private readonly pending = new Map<string, (t: number) => void>()
  private running = false
  private again = false
  private polled = false
  /** Paths found only by the safety poll (should stay 0). */
  foundByPoll = 0
  readonly off: () => void

  constructor (private readonly replica: Replica, private readonly now: () => number, private readonly onError: (err: unknown) => void) {
    this.off = replica.onRemoteChange(() => { this.kick() })
  }

  /** Await `path`: `found` gets the time its lookup first resolved with an entry. */
  watch (path: string, found: (t: number) => void): void { this.pending.set(path, found) }
  get size (): number { return this.pending.size }
  pendingPaths (): string[] { return [...this.pending.keys()] }

  /** Look the awaited paths up now (a safety net; counted when it finds one). */
  poll (): void {
    if (this.pending.size === 0 || this.running) return
    this.polled = true
    this.kick()
  }

  private kick (): void {
    if (this.running) { this.again = true; return }
    if (this.pending.size === 0) return
    this.running = true
    void this.run()
  }

  private async run (): Promise<void> {
    try {
      do {
        this.again = false
        const viaPoll = this.polled
        this.polled = false
        await Promise.all([...this.pending.keys()].map(async path => {
          const entry = await this.replica.lookup(path)
          const t = this.now()
          const found = this.pending.get(path)
          if (entry === undefined || found === undefined) return
          this.pending.delete(path)
          if (viaPoll) this.foundByPoll++
          found(t)
        }))
      } while (this.again)
    } catch (err) {
      this.onError(err)
    } finally {
      this.running = false
    }
  }
}

// -------------------------------------------------------------- history

/**
 * `n` entries as `authors` replicas would write them taking turns of `turn`
 * putFiles each, every author having applied everything before its turn: one
 * put per entry (plus mkdir ops for missing parents, as putFile makes them),
 * 1,000 files per directory, the previous entry as its only parent (and,
 * `version` 2 as nodes write them, its dot; `version` 1, the clock of
 * everything before it), signed with the author's Ed25519 key.
 */
export async function generateEntries (n: number, authors: number, turn: number, version: 1 | 2, every1000: () => void = () => {}): Promise<Uint8Array[]> {
  const signers = await Promise.all(Array.from({ length: authors }, async () => signerFromKey(await generateKeyPair('Ed25519'))))
  const clock: VectorClock = {}
  const dirs = new Set<string>()
  const entries: Uint8Array[] = []
  const base = Date.now() - n
  let head: { cid: CID, dot: [string, number] } | undefined
  for (let i = 0; i < n; i++) {
    if (i % 1000 === 0) { await new Promise(resolve => setImmediate(resolve)); every1000() }
    const signer = signers[Math.floor(i / turn) % authors]
    const seq = (clock[signer.id] ?? 0) + 1
    clock[signer.id] = seq
    const mtime = base + i
    const dir = `/library/d${String(Math.floor(i / 1000)).padStart(4, '0')}`
    const ops: Op[] = []
    for (const d of ['/library', dir]) {
      if (!dirs.has(d)) { dirs.add(d); ops.push({ op: 'mkdir', path: d, mode: 0o755, mtime, replaces: [] }) }
    }
    ops.push({ op: 'put', path: `${dir}/f${String(i).padStart(7, '0')}.bin`, cid: rawCid(i), size: 1000 + (i * 7919) % 1_000_000, mode: 0o644, mtime, replaces: [] })
    const parents = head === undefined ? [] : [head.cid]
    const body: EntryBody = version === 1
      ? { v: 1, author: signer.id, seq, time: mtime, clock: { ...clock }, parents, ops }
      : { v: 2, author: signer.id, seq, time: mtime, parents, deps: head === undefined ? [] : [head.dot], ops }
    const bytes = encodeEntry({ ...body, sig: await signer.sign(encodeEntryBody(body)) })
    head = { cid: cborCID(bytes), dot: [signer.id, seq] }
    entries.push(bytes)
  }
  return entries
}

/** The options both convergence beds take (converge.ts and converge-procs.ts). */
export interface SwarmArgs {
  nodes: number
  writes: number
  spacing: number
  topology: 'star' | 'mesh'
  links: number
  seed: number
  dir: string
  json: boolean
  keep: boolean
}

/** Walks a command line: `next()` steps to the next argument, `value()`/`int()` take the one after it. */
export class ArgReader {
  private i = -1
  arg = ''
  constructor (private readonly argv: string[]) {}
  /** Steps to the next argument; false at the end. */
  next (): boolean { this.arg = this.argv[++this.i] ?? ''; return this.i < this.argv.length }
  /** The value that follows the current argument. */
  value (): string { const v = this.argv[++this.i]; if (v === undefined) throw new Error(`${this.arg} needs a value`); return v }
  /** The value that follows, as an integer of at least `min`. */
  int (min: number): number {
    const n = Number(this.value())
    if (!Number.isInteger(n) || n < min) throw new Error(`${this.arg} wants an integer >= ${min}`)
    return n
  }
}

/** Applies the current argument to `o` if it is one both beds take; false when it is not. */
export function swarmArg (o: SwarmArgs, r: ArgReader): boolean {
  switch (r.arg) {
    case '--nodes': o.nodes = r.int(2); return true
    case '--writes': o.writes = r.int(1); return true
    case '--spacing': o.spacing = r.int(0); return true
    case '--topology': {
      const t = r.value()
      if (t !== 'star' && t !== 'mesh') throw new Error('--topology is star or mesh')
      o.topology = t
      return true
    }
    case '--links': o.links = r.int(0); return true
    case '--seed': o.seed = r.int(0); return true
    case '--dir': o.dir = r.value(); return true
    case '--json': o.json = true; return true
    case '--keep': o.keep = true; return true
    default: return false
  }
}
