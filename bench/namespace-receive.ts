/**
 * Namespace benchmark: the CPU a replica spends receiving entries, alone —
 * decode, checks, batch authentication, apply, commit and the garbage they
 * leave — without a network, a source or another process beside it. It is
 * the per-entry work both a new node's history pull (bench/converge.ts,
 * "(a)") and every delivered write in the simulations pay, measured so that
 * two builds can be compared on a shared machine by CPU time.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/namespace-receive.js [--entries 20000] [--reps 3] [--kv level|memory] [--json]
 *
 * `--entries` entries are generated as bench/converge.ts generates its
 * history (4 authors in turns of 250, one put each, v2, Ed25519-signed),
 * then each rep receives them into a fresh replica in pages of 1,000
 * (`Replica.receive`: one batch authenticated, applied and committed per
 * page, as a pull page is), on LevelDB in a temporary directory (fsynced
 * commits) or on the simulations' in-memory store. Reported per rep: wall
 * time, this process's CPU time (user + system, LevelDB's threads
 * included) and CPU-µs per entry; the medians at the end.
 */
import '../node/polyfills.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { LevelKV, MemoryKV, Replica, peerIdVerifier, signerFromKey, type KV } from '../node/namespace/index.js'
import { generateEntries } from './converge-common.js'
import { fmt, log, median } from './harness.js'

const PAGE = 1000
const silent = pino({ level: 'silent' })

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '20000' },
    reps: { type: 'string', default: '3' },
    kv: { type: 'string', default: 'level' },
    json: { type: 'boolean', default: false }
  }
})
const count = Number(values.entries)
const reps = Number(values.reps)
const kind = values.kv
if (!Number.isSafeInteger(count) || count < PAGE || !Number.isSafeInteger(reps) || reps < 1 || (kind !== 'level' && kind !== 'memory')) {
  throw new Error('usage: namespace-receive [--entries N >= 1000] [--reps R >= 1] [--kv level|memory] [--json]')
}

interface Rep { seconds: number, cpuSeconds: number, cpuUsPerEntry: number }

/** Receive every entry into a fresh replica on `kv`, in pages; the rep's wall and CPU time. */
async function receiveInto (kv: KV, entries: Uint8Array[]): Promise<Rep> {
  const replica = new Replica({ kv, signer: signerFromKey(await generateKeyPair('Ed25519')), verifier: peerIdVerifier(), clock: { now: () => Date.now() }, logger: silent }, { compactAfter: Number.MAX_SAFE_INTEGER })
  await replica.open()
  try {
    const cpu = process.cpuUsage()
    const t = performance.now()
    for (let i = 0; i < entries.length; i += PAGE) {
      const r = await replica.receive(entries.slice(i, i + PAGE))
      if (r.rejected > 0 || r.pending > 0 || r.applied !== Math.min(PAGE, entries.length - i)) throw new Error(`entries rejected or held: ${JSON.stringify(r)}`)
    }
    const seconds = (performance.now() - t) / 1000
    const used = process.cpuUsage(cpu)
    const cpuSeconds = (used.user + used.system) / 1e6
    return { seconds, cpuSeconds, cpuUsPerEntry: cpuSeconds * 1e6 / entries.length }
  } finally {
    await replica.close()
  }
}

log(`namespace-receive: generating ${fmt(count)} entries (4 authors, turns of 250, v2)`)
const entries = await generateEntries(count, 4, 250, 2)
const results: Rep[] = []
for (let rep = 0; rep < reps; rep++) {
  const dir = kind === 'level' ? await mkdtemp(join(tmpdir(), 'shoal-bench-receive-')) : undefined
  try {
    const r = await receiveInto(dir === undefined ? new MemoryKV() : new LevelKV(dir), entries)
    results.push(r)
    log(`rep ${rep + 1}: ${fmt(r.seconds, 2)} s (${fmt(count / r.seconds)} entries/s), ${fmt(r.cpuSeconds, 2)} CPU-s, ${fmt(r.cpuUsPerEntry, 1)} CPU-µs per entry`)
  } finally {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  }
}
const summary = {
  entries: count,
  kv: kind,
  reps: results,
  medianSeconds: median(results.map(r => r.seconds)),
  medianCpuSeconds: median(results.map(r => r.cpuSeconds)),
  medianCpuUsPerEntry: median(results.map(r => r.cpuUsPerEntry))
}
log(`median: ${fmt(summary.medianSeconds, 2)} s, ${fmt(summary.medianCpuSeconds, 2)} CPU-s, ${fmt(summary.medianCpuUsPerEntry, 1)} CPU-µs per entry (${kind})`)
if (values.json === true) console.log(JSON.stringify(summary))
