/**
 * Shared helpers of the namespace tests: replicas over an in-memory store on
 * a virtual clock, exchanging entries directly (no network).
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { pino } from 'pino'
import { MemoryKV, Replica, peerIdVerifier, signerFromKey, type Entry, type KV, type TrustPolicy, type Verifier } from '../../../node/namespace/index.js'
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
