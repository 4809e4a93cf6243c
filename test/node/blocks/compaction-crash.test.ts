/**
 * kill -9 in the middle of a pack rewrite (issue 15).
 *
 * What it proves: a pack store SIGKILLed while compaction is rewriting a pack
 * (live records copied to the current pack, not all of them, the old pack
 * still on disk) loses no acknowledged block, serves nothing corrupt, does not
 * bring deleted blocks back (beyond what docs/blockstore.md allows), and the
 * next compaction completes and gives the dead space back. Five kills, at
 * different points of the pass (after the 1st, 5th, 11th, 18th and 24th copy
 * of the round's blocks: early and late in the first pack rewritten, and in
 * later packs), in one store that carries the previous rounds' blocks and
 * recoveries along.
 *
 * How each round goes (real LevelDB, real pack files in a temp dir; no mock):
 *
 * 1. compaction-crash-child.js fills the store with 128 blocks (512 KiB
 *    packs), deletes three in four (the packs fall to ~25 % live, under the
 *    50 % threshold), commits, and waits on stdin.
 * 2. Baseline: the parent reads every pack file and checks that each of the
 *    round's blocks has exactly ONE intact record (crc32c-checked) on disk —
 *    a block is written once by `put`.
 * 3. It lets the child run `store.compact()` (paced at 128 KiB/s, every record
 *    written to its pack as soon as it is appended) and reads the packs as
 *    they grow. Once N of the round's blocks have a second intact record on
 *    disk (a copy: nothing else writes) and, for at least one of them, the
 *    pack of its original record is still there, it sends SIGKILL at once.
 * 4. Proof that the kill landed inside a rewrite, from the disk after the
 *    process is dead: some block of the round has BOTH its original record
 *    (in a pack that compaction has not removed) and an intact copy elsewhere.
 *    The copy shows the rewrite of that pack had started moving records; the
 *    original's pack still existing shows the rewrite had not finished (the
 *    pack is removed at the rewrite's end). The test fails otherwise, e.g. if
 *    the child printed `compacted` or the pass was between packs. The index,
 *    read straight from LevelDB, tells which side of the rewrite's commit the
 *    kill fell on (reported; either is inside the rewrite), and must point at
 *    one of the block's intact records.
 * 5. The parent reopens the store (recovery runs) and checks every block
 *    acknowledged in any round (and not deleted) with `has` and `getBytes`
 *    (crc32c and sha-256 checked) byte for byte, and walks `getAll` (throws
 *    on anything corrupt). Deleted blocks must stay gone: deletes leave no
 *    tombstone, and the contract (docs/blockstore.md, "Open: recovery") lets
 *    open salvage a deleted block's record only from a pack the index no
 *    longer knows (a kill between the rewrite's removal of the pack's
 *    counters and its unlink); it is then reported in
 *    `recovery.salvagedRecords`, is unreferenced garbage, and is deleted here
 *    as `gc` would. Anything else that comes back fails the test.
 * 6. A second `compact()` must complete, take the packs' bytes down, and
 *    leave at most twice the live record bytes (every pack but the current
 *    one is then at least half live) plus one pack; every block reads back
 *    again afterwards.
 *
 * Nothing is timed: pacing only makes the rewrite long enough to catch on
 * disk; whether the kill landed inside it is asserted from the disk.
 *
 * What it does not cover: the kills land while records are being copied
 * (the index still at the originals). The last step of a rewrite, the old
 * pack's removal after the commit, is killed on purpose in
 * pack-removal-crash.test.ts (a fault hook stops the store there). A kill
 * loses no page cache, so lost fdatasyncs (power loss) are not exercised.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { ClassicLevel } from 'classic-level'
import { CID } from 'multiformats/cid'
import { decodeLocation, indexKey } from '../../../node/blocks/pack-index.js'
import { PACK_HEADER, RECORD_HEADER, decodeRecord, recordLength, recordLengthFromHeader } from '../../../node/blocks/pack-record.js'
import { assertBytesEqual, randomBytes } from '../../helpers/bytes.js'
import { defer, openBlockStore, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { settlesWithin } from '../../helpers/processes.js'

const CHILD = fileURLToPath(new URL('./compaction-crash-child.js', import.meta.url))
/** The child's pack size (compaction-crash-child.ts); the parent reopens with the same. */
const PACK_BYTES = 512 * 1024
const BLOCKS_PER_ROUND = 128
/**
 * Kill once this many of the round's live blocks (32; about 8 per pack) have
 * a copy on disk: one round per entry, at different points of the pass.
 */
const KILL_AFTER_COPIES = [1, 5, 11, 18, 24]
/** Longest wait for any one step of the child. */
const STEP_MS = 20_000
/** A sha2-256 multihash is 34 bytes. */
const MULTIHASH_BYTES = 34

/** Where an intact record is. */
interface At { pack: number, offset: number }

/** A block's identity in the maps below: its multihash, base64. */
function idOf (multihash: Uint8Array): string {
  return Buffer.from(multihash.buffer, multihash.byteOffset, multihash.byteLength).toString('base64')
}

function packPath (dir: string, pack: number): string {
  return join(dir, `${pack.toString(16).padStart(8, '0')}.pack`)
}

async function packNumbers (dir: string): Promise<number[]> {
  return (await readdir(dir)).filter(n => /^[0-9a-f]{8}\.pack$/.test(n)).map(n => parseInt(n.slice(0, 8), 16)).sort((a, b) => a - b)
}

/** Bytes of every pack file in `dir`. */
async function packBytes (dir: string): Promise<number> {
  let total = 0
  for (const pack of await packNumbers(dir)) total += (await stat(packPath(dir, pack))).size
  return total
}

/**
 * The intact (complete, crc32c-valid) records of the pack files in a folder,
 * read straight from the files, independently of the store's code. Packs are
 * append-only while the child runs, so each call reads only what was appended
 * since the last one; a record still being written (or torn by the kill)
 * ends a pack's scan until the next call. Packs removed are forgotten.
 */
class PackScanner {
  private readonly packs = new Map<number, { end: number, records: Array<{ id: string, offset: number }> }>()

  constructor (private readonly dir: string) {}

  /** Block id → where its intact records are, in the packs that exist now. */
  async scan (): Promise<Map<string, At[]>> {
    const present = await packNumbers(this.dir)
    for (const pack of this.packs.keys()) if (!present.includes(pack)) this.packs.delete(pack)
    for (const pack of present) {
      const state = this.packs.get(pack) ?? { end: PACK_HEADER, records: [] }
      try {
        state.end = await this.read(packPath(this.dir, pack), state.end, state.records)
        this.packs.set(pack, state)
      } catch (err: any) {
        if (err?.code !== 'ENOENT') throw err
        this.packs.delete(pack) // removed under the scan
      }
    }
    const found = new Map<string, At[]>()
    for (const [pack, { records }] of this.packs) {
      for (const { id, offset } of records) {
        const list = found.get(id) ?? []
        list.push({ pack, offset })
        found.set(id, list)
      }
    }
    return found
  }

  private async read (path: string, from: number, out: Array<{ id: string, offset: number }>): Promise<number> {
    const fh = await open(path, 'r')
    try {
      const size = (await fh.stat()).size
      if (size <= from) return from
      const buf = Buffer.alloc(size - from)
      const { bytesRead } = await fh.read(buf, 0, buf.byteLength, from)
      let pos = 0
      while (pos + RECORD_HEADER <= bytesRead) {
        const length = recordLengthFromHeader(buf.subarray(pos))
        if (pos + length > bytesRead) break
        const decoded = decodeRecord(buf.subarray(pos, pos + length))
        if (typeof decoded === 'string') break
        out.push({ id: idOf(decoded.multihash), offset: from + pos })
        pos += length
      }
      return from + pos
    } finally {
      await fh.close()
    }
  }
}

function same (a: At, b: At): boolean {
  return a.pack === b.pack && a.offset === b.offset
}

/** `promise`, or an error naming `what` after {@link STEP_MS}. */
async function within<T> (promise: Promise<T>, what: string): Promise<T> {
  return await settlesWithin(promise, what, STEP_MS)
}

/** The child process of one round, with its output as lines; SIGKILLed at the test's end if still alive. */
function startChild (t: CleanupContext, args: string[]): { send: (line: string) => void, kill: () => void, lines: () => string[], closed: Promise<{ code: number | null, signal: NodeJS.Signals | null }>, running: () => boolean } {
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
  child.stdin.on('error', () => {}) // a write racing the kill
  let done = false
  const closed = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => child.once('close', (code, signal) => { done = true; resolve({ code, signal }) }))
  defer(t, async () => {
    if (done) return
    child.kill('SIGKILL')
    await within(closed, 'the child ends after SIGKILL').catch(() => {})
  })
  return {
    send: line => { child.stdin.write(line + '\n') },
    kill: () => { child.kill('SIGKILL') },
    lines: () => out.split('\n').slice(0, -1),
    closed,
    running: () => !done
  }
}

/** Poll every 10 ms until `fn` holds; fail naming `what` after {@link STEP_MS}. */
async function until (what: string, fn: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + STEP_MS
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await sleep(10)
  }
}

describe('pack store: kill -9 inside a pack rewrite', () => {
  it(`keeps every acknowledged block across ${KILL_AFTER_COPIES.length} SIGKILLs proven to land inside a compaction's pack rewrite`, { timeout: 120_000 }, async (t) => {
    const path = await tempDir(t, 'shoal-compaction-crash-')
    const dir = join(path, 'packs')
    /** Acknowledged and not deleted, every round: CID text → how to make its bytes. */
    const acked = new Map<string, { seed: number, size: number }>()
    const deleted = new Set<string>()

    for (const [i, killAfter] of KILL_AFTER_COPIES.entries()) {
      const round = i + 1
      const child = startChild(t, [path, String(round), String(BLOCKS_PER_ROUND)])
      const exitedEarly = (): boolean => {
        if (child.running()) return false
        throw new Error(`round ${round}: the child ended by itself; it printed: ${child.lines().slice(-3).join(' | ')}`)
      }

      // 1. fill, delete three in four
      await until(`round ${round}: the child fills and deletes`, () => exitedEarly() || child.lines().includes('filled'))
      const roundBlocks = new Map<string, CID>() // id → CID, every block of the round
      const roundDeleted = new Set<string>()
      for (const line of child.lines()) {
        const [verb, text, seed, size] = line.split(' ')
        if (verb === 'ack') {
          acked.set(text, { seed: Number(seed), size: Number(size) })
          const cid = CID.parse(text)
          roundBlocks.set(idOf(cid.multihash.bytes), cid)
        }
        if (verb === 'deleting') {
          acked.delete(text)
          deleted.add(text)
          roundDeleted.add(idOf(CID.parse(text).multihash.bytes))
        }
      }
      assert.equal(roundBlocks.size, BLOCKS_PER_ROUND)
      const roundLive = [...roundBlocks.keys()].filter(id => !roundDeleted.has(id))

      // 2. baseline: each of the round's blocks has exactly one intact record
      const scanner = new PackScanner(dir)
      const before = await scanner.scan()
      const original = new Map<string, At>()
      for (const id of roundBlocks.keys()) {
        const at = before.get(id) ?? []
        assert.equal(at.length, 1, `round ${round}: block ${roundBlocks.get(id)?.toString() ?? id} has ${at.length} intact records before compaction`)
        original.set(id, at[0])
      }

      // 3. compact; kill once `killAfter` copies are on disk and a rewritten pack is still there
      child.send('go')
      const copied = new Set<string>()
      let killedWith: string | undefined
      await until(`round ${round}: ${killAfter} copies on disk with the source pack still there`, async () => {
        exitedEarly()
        const now = await scanner.scan()
        const pending: string[] = []
        for (const id of roundLive) {
          const at = now.get(id) ?? []
          const base = original.get(id) as At
          if (!at.some(a => !same(a, base))) continue
          copied.add(id)
          if (at.some(a => same(a, base))) pending.push(id)
        }
        if (copied.size < killAfter) return false
        killedWith = pending.find(id => existsSync(packPath(dir, (original.get(id) as At).pack)))
        if (killedWith === undefined) return false
        child.kill() // synchronously after seeing the source pack there
        return true
      })
      const exit = await within(child.closed, `round ${round}: the child ends after SIGKILL`)
      assert.equal(exit.signal, 'SIGKILL', `round ${round}: the child was not killed (exit ${String(exit.code)})`)
      assert.ok(!child.lines().includes('compacted'), `round ${round}: compaction finished before the kill`)
      assert.ok(child.lines().includes('compacting'))

      // 4. the proof, from the disk of the dead process
      const after = await new PackScanner(dir).scan()
      const inside: string[] = []
      let copiesOnDisk = 0
      for (const id of roundLive) {
        const at = after.get(id) ?? []
        const base = original.get(id) as At
        if (at.some(a => !same(a, base))) copiesOnDisk++
        if (at.some(a => same(a, base)) && at.some(a => !same(a, base))) inside.push(id)
      }
      assert.ok(inside.length > 0, `round ${round}: the kill did not land inside a pack rewrite (no block has both its original record, in a pack still on disk, and a copy; ${copiesOnDisk} copied)`)
      const sources = new Set(inside.map(id => (original.get(id) as At).pack))
      let uncommitted = 0
      let committed = 0
      const db = new ClassicLevel<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' })
      await db.open()
      try {
        for (const id of inside) {
          const cid = roundBlocks.get(id) as CID
          const value = await db.get(indexKey(cid.multihash.bytes))
          assert.ok(value !== undefined, `round ${round}: the index lost ${cid.toString()}`)
          const loc = decodeLocation(value)
          assert.ok((after.get(id) ?? []).some(a => same(a, loc)), `round ${round}: the index points ${cid.toString()} at pack ${loc.pack} offset ${loc.offset}, which holds no intact record of it`)
          if (same(loc, original.get(id) as At)) uncommitted++
          else committed++
        }
      } finally {
        await db.close()
      }

      // 5. reopen: every acknowledged block, byte for byte; deleted ones stay gone
      const store = await openBlockStore(t, path, { maxPackBytes: PACK_BYTES, autoCompact: false })
      const recovery = store.recovery
      assert.ok(recovery !== undefined)
      for (const [text, { seed, size }] of acked) {
        const cid = CID.parse(text)
        assert.equal(await store.has(cid), true, `round ${round}: acknowledged ${text} is missing`)
        assertBytesEqual(await store.getBytes(cid), randomBytes(size, seed), `round ${round}: ${text} reads back different bytes`)
      }
      const back: CID[] = []
      for (const text of deleted) if (await store.has(CID.parse(text))) back.push(CID.parse(text))
      if (back.length > 0) {
        assert.ok(recovery.unknownPacks.length > 0 && back.length <= recovery.salvagedRecords,
          `round ${round}: ${back.length} deleted blocks are back (${back[0].toString()}…) without a pack whose counters were gone: ${JSON.stringify(recovery)}`)
      }
      let served = 0
      for await (const { cid } of store.getAll()) { // crc32c- and sha-256-checked: throws on anything corrupt
        const text = cid.toString()
        assert.ok(acked.has(text) || back.some(c => c.equals(cid)), `round ${round}: ${text} is served but is no acknowledged, undeleted block`)
        served++
      }
      assert.equal(served, acked.size + back.length)
      for (const cid of back) await store.delete(cid) // unreferenced salvage: what gc does

      // 6. a second compaction completes and gives the space back
      const bytesBefore = await packBytes(dir)
      await store.compact()
      const bytesAfter = await packBytes(dir)
      let liveRecordBytes = 0
      for (const { size } of acked.values()) liveRecordBytes += recordLength(MULTIHASH_BYTES, size)
      const packsLeft = (await packNumbers(dir)).length
      assert.ok(bytesAfter < bytesBefore, `round ${round}: compaction gave nothing back (${bytesBefore} → ${bytesAfter} bytes)`)
      assert.ok(bytesAfter <= 2 * liveRecordBytes + PACK_BYTES + PACK_HEADER * packsLeft,
        `round ${round}: ${bytesAfter} pack bytes left for ${liveRecordBytes} live record bytes`)
      for (const [text, { seed, size }] of acked) assertBytesEqual(await store.getBytes(CID.parse(text)), randomBytes(size, seed), `round ${round}: ${text} after compaction`)
      await store.close()

      t.diagnostic(`round ${round}: SIGKILL sent on seeing ${roundBlocks.get(killedWith as string)?.toString() ?? '?'} copied, its pack still there; killed after ${copiesOnDisk} of ${roundLive.length} live blocks were copied; ${inside.length} with original and copy on disk in pack(s) ${[...sources].join(', ')} (index at the original: ${uncommitted}, at the copy: ${committed}); ` +
        `open: ${recovery.deadRecords} dead and ${recovery.salvagedRecords} salvaged records, ${recovery.cutBytes} bytes cut, ${back.length} deleted blocks salvaged; ` +
        `packs ${bytesBefore} → ${bytesAfter} bytes (${liveRecordBytes} live) after the second compaction`)
    }
    assert.equal(acked.size, KILL_AFTER_COPIES.length * BLOCKS_PER_ROUND / 4)
  })
})
