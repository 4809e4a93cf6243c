/**
 * Namespace benchmark: what a clock on the wire costs with many lifetime
 * authors, before and after they are retired (docs/namespace.md, "Retired
 * authors").
 *
 *   npx tsc -p tsconfig.json && node dist/bench/namespace-retire.js [--authors 1000,4200,20000] [--rounds 200] [--json]
 *
 * For each A in `--authors`, a replica on a MemoryKV receives one entry from
 * each of A authors (new Ed25519 keys), then the authors time out as members
 * and the replica retires them (`retire()`, 4,096 per entry), and a second
 * replica pulls everything (it applies the retirements). Reported per A:
 *
 * - the heartbeat (`encodeHeadsMessage` of the clock and heads, no entries)
 *   and a pull request (`encodeSyncRequest`) in bytes: the whole clock (what
 *   was sent before retirement) and its wire form (what is sent now);
 * - CPU per message, over `--rounds` messages: encoding and decoding the
 *   heartbeat with the whole clock (the ceiling: what every message cost
 *   before), and the wire form's encode + decode + the sender's `wireClock`
 *   + the receiver's `readClock` (the walk over the retirement table is the
 *   part that still grows with the authors).
 */
import '../node/polyfills.js'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { pino } from 'pino'
import { MemoryKV, Replica, peerIdVerifier, signerFromKey, type Signer } from '../node/namespace/index.js'
import { sha256 } from '../node/blocks/verify.js'
import { decodeHeadsMessage, encodeEntry, encodeEntryBody, encodeHeadsMessage, encodeSyncRequest, type EntryBodyV2, type VectorClock } from '../protocol/namespace.js'
import { fmt, log } from './harness.js'

const silent = pino({ level: 'silent' })

const { values } = parseArgs({
  options: {
    authors: { type: 'string', default: '1000,4200,20000' },
    rounds: { type: 'string', default: '200' },
    json: { type: 'boolean', default: false }
  }
})

interface Row {
  authors: number
  heartbeatBytes: { whole: number, wire: number }
  pullBytes: { whole: number, wire: number }
  /** µs of CPU per message. */
  cpuUs: { whole: number, wire: number }
  named: number
}

async function replicaAt (time: { now: number }): Promise<Replica> {
  const r = new Replica({ kv: new MemoryKV(), signer: signerFromKey(await generateKeyPair('Ed25519')), verifier: peerIdVerifier(), clock: { now: () => time.now }, logger: silent }, { memberTimeout: 1_000 })
  await r.open()
  return r
}

async function entryOf (s: Signer, i: number): Promise<Uint8Array> {
  const cid = CID.createV1(0x55, Digest.create(0x12, sha256(new TextEncoder().encode(`f${i}`))))
  const body: EntryBodyV2 = { v: 2, author: s.id, seq: 1, time: 1_000, parents: [], deps: [], ops: [{ op: 'put', path: `/a/${i}`, cid, size: 1, mode: 0o644, mtime: 1_000, replaces: [] }] }
  return encodeEntry({ ...body, sig: await s.sign(encodeEntryBody(body)) })
}

/** CPU µs per call of `fn`, over `rounds` calls. */
function cpuPer (rounds: number, fn: () => void): number {
  const start = process.cpuUsage()
  for (let i = 0; i < rounds; i++) fn()
  const used = process.cpuUsage(start)
  return (used.user + used.system) / rounds
}

async function measure (authors: number, rounds: number): Promise<Row> {
  const time = { now: 1_000 }
  const a = await replicaAt(time)
  const b = await replicaAt(time)
  const signers = await Promise.all(Array.from({ length: authors }, async () => signerFromKey(await generateKeyPair('Ed25519'))))
  const entries = await Promise.all(signers.map(entryOf))
  for (let i = 0; i < entries.length; i += 1000) await a.receive(entries.slice(i, i + 1000))
  const whole: VectorClock = a.state().clock
  const heads = a.state().heads
  time.now += 2_000
  while (await a.retire() > 0) {}
  for (;;) {
    const page = await a.pull(b.state().clock, 1000)
    if (page.type !== 'entries') throw new Error('unexpected snapshot')
    await b.receive(page.entries)
    if (!page.more) break
  }
  const clock = a.state().clock
  const wire = a.wireClock(clock)
  const heartbeat = (c: VectorClock): Uint8Array => encodeHeadsMessage({ v: 1, type: 'heads', clock: c, heads: heads.slice(0, 1), entries: [] })
  const pull = (c: VectorClock): Uint8Array => encodeSyncRequest({ v: 1, type: 'pull', id: 1, clock: c, limit: 1000 })
  const cpuWhole = cpuPer(rounds, () => { decodeHeadsMessage(heartbeat(whole)) })
  const cpuWire = cpuPer(rounds, () => { b.readClock(decodeHeadsMessage(heartbeat(a.wireClock(a.clockNow()))).clock) })
  const read = b.readClock(wire)
  if (Object.keys(read).length !== Object.keys(clock).length) throw new Error('the wire clock did not read back whole')
  await a.close()
  await b.close()
  return {
    authors,
    heartbeatBytes: { whole: heartbeat(whole).byteLength, wire: heartbeat(wire).byteLength },
    pullBytes: { whole: pull(whole).byteLength, wire: pull(wire).byteLength },
    cpuUs: { whole: Math.round(cpuWhole), wire: Math.round(cpuWire) },
    named: Object.keys(wire).length
  }
}

const rows: Row[] = []
for (const n of (values.authors ?? '').split(',').map(Number)) {
  const row = await measure(n, Number(values.rounds))
  rows.push(row)
  if (values.json !== true) {
    log(`A=${fmt(n)}: heartbeat ${fmt(row.heartbeatBytes.whole)} B -> ${fmt(row.heartbeatBytes.wire)} B (${row.named} named), pull ${fmt(row.pullBytes.whole)} B -> ${fmt(row.pullBytes.wire)} B, CPU per message ${row.cpuUs.whole} us -> ${row.cpuUs.wire} us`)
  }
}
if (values.json === true) process.stdout.write(JSON.stringify(rows, null, 2) + '\n')
