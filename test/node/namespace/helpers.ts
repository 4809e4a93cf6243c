/**
 * Shared helpers of the namespace tests: replicas over an in-memory store on
 * a virtual clock, exchanging entries directly (no network).
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { pino } from 'pino'
import { MemoryKV, Replica, cborCID, peerIdVerifier, signerFromKey, type Entry, type KV, type Signer, type TrustPolicy, type Verifier } from '../../../node/namespace/index.js'
import { encodeEntry, encodeEntryBody, type EntryBodyV2 } from '../../../protocol/namespace.js'
import type { Logger } from '../../../node/logger.js'
import { sha256 } from '../../../node/blocks/verify.js'

/** A logger that says nothing. */
export const silent = pino({ level: 'silent' })

/** Virtual time shared by a test's replicas. */
export interface Sim { now: number }

/** What {@link replica} builds a replica from, besides its defaults. */
export interface ReplicaParts {
  /** @default a fresh in-memory store */
  kv?: KV
  /** @default a new key */
  key?: Awaited<ReturnType<typeof generateKeyPair>>
  /** @default every author trusted (none given) */
  trust?: TrustPolicy
  /** @default silent */
  logger?: Logger
  /** @default peerIdVerifier() */
  verifier?: Verifier
}

/** An open replica over a fresh in-memory store, with a new key (or the given parts). */
export async function replica (sim: Sim, options: ConstructorParameters<typeof Replica>[1] = {}, parts: ReplicaParts = {}): Promise<Replica> {
  const r = new Replica({
    kv: parts.kv ?? new MemoryKV(),
    signer: signerFromKey(parts.key ?? await generateKeyPair('Ed25519')),
    verifier: parts.verifier ?? peerIdVerifier(),
    clock: { now: () => sim.now },
    logger: parts.logger ?? silent,
    trust: parts.trust
  }, options)
  await r.open()
  return r
}

/** The raw-codec CID of a text (content CIDs of test files). */
export function cidOf (text: string): string {
  return CID.createV1(0x55, Digest.create(0x12, sha256(new TextEncoder().encode(text)))).toString()
}

/** A dag-cbor CID (a stripe manifest, say) derived from a text. */
export function cborCidOf (text: string): string {
  return CID.createV1(0x71, Digest.create(0x12, sha256(new TextEncoder().encode(text)))).toString()
}

/** A file record for `putFile`. */
export function file (text: string, mtime = 1_000): { cid: string, size: number, mode: number, mtime: number } {
  return { cid: cidOf(text), size: text.length, mode: 0o644, mtime }
}

/** Pull everything `from` has into `to`, page by page (snapshots included). */
export async function pullInto (to: Replica, from: Replica, limit = 1000): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    const answer = await from.pull(to.state().clock, limit)
    if (answer.type === 'snapshot') {
      await to.loadSnapshot(answer.root, async cids => await from.blocks(cids))
      continue
    }
    await to.receive(answer.entries)
    if (!answer.more) return
  }
  throw new Error('pull did not finish')
}

/** Every replica pulls from every other, twice. */
export async function syncAll (replicas: Replica[]): Promise<void> {
  for (let round = 0; round < 2; round++) {
    for (const a of replicas) for (const b of replicas) if (a !== b) await pullInto(a, b)
  }
}

/** The tree as lines (`/dir/`, `/file <cid tail> (conflict of …)`). */
export async function tree (r: Replica): Promise<string[]> {
  const out: string[] = []
  for await (const e of r.walk('/')) out.push(describeEntry(e))
  return out
}

/** One line of {@link tree}. */
export function describeEntry (e: Entry): string {
  return e.type === 'dir' ? `${e.path}/` : `${e.path} ${e.cid.slice(-6)}${e.conflictOf !== undefined ? ` (conflict of ${e.conflictOf})` : ''}`
}

/** Assert that every replica shows the first one's tree, clock and heads; returns the tree. */
export async function converged (replicas: Replica[]): Promise<string[]> {
  const first = await tree(replicas[0])
  for (const r of replicas.slice(1)) {
    assert.deepEqual(await tree(r), first)
    assert.deepEqual(r.state().clock, replicas[0].state().clock)
    assert.deepEqual(r.state().heads.map(String), replicas[0].state().heads.map(String))
  }
  return first
}

/** `n` new authors (fresh Ed25519 keys). */
export async function authors (n: number): Promise<Signer[]> {
  return await Promise.all(Array.from({ length: n }, async () => signerFromKey(await generateKeyPair('Ed25519'))))
}

/** Each author's entry `seq` (a put of `/<dir>/<i>`, parents as given), encoded and signed. */
export async function writes (signers: Signer[], dir: string, seq = 1, time = 1_000, parents: Array<[CID, [string, number]]> = []): Promise<Uint8Array[]> {
  return await Promise.all(signers.map(async (s, i) => {
    const body: EntryBodyV2 = {
      v: 2,
      author: s.id,
      seq,
      time,
      parents: parents.map(p => p[0]),
      deps: parents.map(p => p[1]),
      ops: [{ op: 'put', path: `/${dir}/${i}`, cid: CID.parse(cidOf(`${dir}-${i}-${seq}`)), size: 1, mode: 0o644, mtime: time, replaces: [] }]
    }
    return encodeEntry({ ...body, sig: await s.sign(encodeEntryBody(body)) })
  }))
}

/**
 * One entry by each of `signers` (a put of `/<dir>/<i>`), each after the
 * previous one: a chain, so the namespace has one head however many authors.
 */
export async function chainedWrites (signers: Signer[], dir: string, time = 1_000): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  let parent: [CID, [string, number]] | undefined
  for (const [i, s] of signers.entries()) {
    const body: EntryBodyV2 = {
      v: 2,
      author: s.id,
      seq: 1,
      time,
      parents: parent === undefined ? [] : [parent[0]],
      deps: parent === undefined ? [] : [parent[1]],
      ops: [{ op: 'put', path: `/${dir}/${i}`, cid: CID.parse(cidOf(`${dir}-${i}-1`)), size: 1, mode: 0o644, mtime: time, replaces: [] }]
    }
    const bytes = encodeEntry({ ...body, sig: await s.sign(encodeEntryBody(body)) })
    out.push(bytes)
    parent = [cborCID(bytes), [s.id, 1]]
  }
  return out
}
