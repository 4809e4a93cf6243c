/**
 * Reads of committed files placed in this node's pack records: the libfuse3
 * binding's threads read each record, check its length, multihash and
 * crc32c, and copy the asked range into the kernel's buffer
 * (node/fuse/record-places.ts, native/fuse3/records.c). A real mount, a real block store on disk; the fault is real
 * too: a byte of a record flipped in its pack file.
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { open, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseChunker } from '../../../node/content/index.js'
import { CID } from 'multiformats/cid'
import * as dagPb from '@ipld/dag-pb'
import { tempDir } from '../../helpers/temp.js'
import { mountTestNode, python, q, sh, shOk, type TestMount } from './helpers.js'

const TEST = { timeout: 60_000 }
const LEAF = 262_144
const MiB = 1024 * 1024

/** `bytes` added as `path` through the files API (not through the mount: a file the mount's cache does not hold). */
async function added (m: TestMount, bytes: Uint8Array, path = '/f.bin'): Promise<void> {
  await m.files.add(path, (async function * () { yield bytes })(), { chunker: parseChunker(`size-${LEAF}`) })
  assert.equal(m.service.mounts()[0]?.binding, 'libfuse3', 'the libfuse3 binding serves the mount (built by .ci/run)')
}

/**
 * Read `file` through the mount in 1 MiB reads with a pause after the first
 * (the handle looks up the records ahead meanwhile): the sha-256 of what was
 * read, or the error that stopped it and the offset it was at.
 */
async function pausedRead (file: string): Promise<{ sha?: string, error?: string, at: number }> {
  const r = await python(`
import hashlib, json, time
h = hashlib.sha256()
at = 0
try:
    with open(${JSON.stringify(file)}, 'rb', buffering=0) as f:
        first = True
        while True:
            chunk = f.read(1 << 20)
            if not chunk: break
            h.update(chunk)
            at += len(chunk)
            if first:
                time.sleep(0.5)
                first = False
    print(json.dumps({'sha': h.hexdigest(), 'at': at}))
except OSError as e:
    print(json.dumps({'error': e.strerror, 'at': at}))
`, { timeoutMs: 30_000 })
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout)
}

/** One byte flipped in the pack record of `leaf` (its first 64 bytes identify it), on disk. */
async function flipRecordOf (m: TestMount, leaf: Uint8Array): Promise<void> {
  const packs = join(m.blocks, 'packs')
  let flipped = false
  for (const name of await readdir(packs)) {
    const at = (await readFile(join(packs, name))).indexOf(leaf.subarray(0, 64))
    if (at < 0) continue
    const fh = await open(join(packs, name), 'r+')
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, at + 1000)
    b[0] ^= 0x01
    await fh.write(b, 0, 1, at + 1000)
    await fh.close()
    flipped = true
  }
  assert.ok(flipped, 'the leaf is in a pack')
}

/** A mount whose node holds `/f.bin` of `size` random bytes (added through the files API), a copy of them at `src`, and the page cache dropped. */
async function placedFile (t: TestContext, size: number): Promise<{ m: TestMount, bytes: Buffer, src: string }> {
  const m = await mountTestNode(t, { places: true })
  const bytes = randomBytes(size)
  await added(m, bytes)
  const src = join(await tempDir(t), 'f.bin')
  await writeFile(src, bytes)
  await sh('echo 1 > /proc/sys/vm/drop_caches')
  return { m, bytes, src }
}

/** The leaves of the file at `path`, read from the store. */
async function leavesOf (m: TestMount, path: string): Promise<CID[]> {
  const entry = await m.namespace.stat(path)
  assert.ok(entry.type === 'file')
  const root = dagPb.decode(await m.blockstore.getBytes(CID.parse(entry.cid)))
  return root.Links.map(l => l.Hash)
}

describe('FUSE reads placed in pack records', () => {
  it('a committed file reads byte-identical, whole and in ranges, its records read and checked by the binding', TEST, async t => {
    const { m, bytes, src } = await placedFile(t, 6 * 1024 * 1024 + 12_345)
    await shOk(`cmp ${q(src)} ${q(join(m.dir, 'f.bin'))}`)
    const range = await shOk(`dd if=${q(join(m.dir, 'f.bin'))} bs=4096 skip=700 count=3 2>/dev/null | od -An -tx1 | tr -d ' \\n' | head -c 64`)
    assert.equal(range, bytes.subarray(700 * 4096, 700 * 4096 + 32).toString('hex'))
    assert.ok(m.service.placedReads() > 0, 'the reads were placed')
    assert.equal(m.service.retriedReads(), 0, 'every record passed the binding\'s checks (its crc32c agrees with the store\'s)')
    // the binding's own reads are counted for the node's metrics: every leaf at least once, none refused
    const counts = m.service.recordReads()
    assert.ok(counts.records >= Math.ceil(bytes.length / LEAF), `records read: ${counts.records}`)
    // and each once: two requests in flight that share a record read it once, whatever the other records of theirs
    assert.ok(counts.records <= Math.ceil(bytes.length / LEAF) + 2, `records read: ${counts.records} for ${Math.ceil(bytes.length / LEAF)} leaves`)
    assert.ok(counts.bytes >= bytes.length, `bytes read: ${counts.bytes}`)
    assert.equal(counts.refused, 0)
  })

  it('a record that fails its check is never served: the read falls back to the block store, which refuses it', TEST, async t => {
    const m = await mountTestNode(t, { places: true })
    const bytes = randomBytes(8 * LEAF)
    await added(m, bytes)
    // one byte of the fourth leaf's record, on disk
    await flipRecordOf(m, bytes.subarray(3 * LEAF, 4 * LEAF))
    await sh('echo 1 > /proc/sys/vm/drop_caches')
    const head = await shOk(`dd if=${q(join(m.dir, 'f.bin'))} bs=${LEAF} count=3 2>/dev/null | sha256sum`)
    assert.equal(head.split(' ')[0], createHash('sha256').update(bytes.subarray(0, 3 * LEAF)).digest('hex'), 'the leaves before it read well')
    assert.ok(m.service.placedReads() > 0, 'those reads were placed')
    const bad = await sh(`dd if=${q(join(m.dir, 'f.bin'))} of=/dev/null bs=${LEAF} skip=3 count=1`)
    assert.notEqual(bad.code, 0, 'the corrupt leaf is not served')
    assert.match(bad.stderr, /Input\/output error/)
    assert.ok(m.service.retriedReads() > 0, 'the binding refused the record and asked again')
    assert.ok(m.service.recordReads().refused > 0, 'and counted it (shoal_fuse_records_refused_total)')
  })

  it('a sequential reader is answered by the binding from the places given ahead, asking JavaScript once every several requests', TEST, async t => {
    const m = await mountTestNode(t, { places: true })
    const bytes = randomBytes(16 * 1024 * 1024)
    await added(m, bytes)
    await sh('echo 1 > /proc/sys/vm/drop_caches')
    const before = m.service.placedReads()
    const read = await pausedRead(join(m.dir, 'f.bin'))
    assert.equal(read.sha, createHash('sha256').update(bytes).digest('hex'), 'the exact bytes')
    const asked = m.service.placedReads() - before
    // 16 requests of 1 MiB; the first few are asked before the records ahead are known, the rest are kept places
    assert.ok(asked > 0 && asked <= 8, `JavaScript placed ${asked} of the 16 requests`)
    assert.equal(m.service.retriedReads(), 0)
  })

  it('requests just after the handle\'s ask in flight wait for its answer and are served from it, rather than asking JavaScript again', TEST, async t => {
    const m = await mountTestNode(t, { places: true })
    const bytes = randomBytes(32 * 1024 * 1024)
    await added(m, bytes)
    // no read-ahead: each pread below is one request of its own, sent when the test says
    const dev = (await shOk(`mountpoint -d ${q(m.dir)}`)).trim()
    await shOk(`echo 0 > /sys/class/bdi/${dev}/read_ahead_kb`)
    await sh('echo 1 > /proc/sys/vm/drop_caches')
    // a spy on the real filesystem: every ask, and the first at 16 MiB or past held until the test lets it go
    const fs = (m.service as unknown as { fs: { places: (fh: number, length: number, offset: number) => Promise<unknown> } }).fs
    const places = fs.places.bind(fs)
    const asks: number[] = []
    let release!: () => void
    const released = new Promise<void>(resolve => { release = resolve })
    let held: ((offset: number) => void) | undefined
    const heldAsk = new Promise<number>(resolve => { held = resolve })
    fs.places = async (fh, length, offset) => {
      asks.push(offset)
      if (offset >= 16 * MiB && held !== undefined) {
        held(offset)
        held = undefined
        // answered once let go (the records ahead long looked up by then: the answer places the next 8 MiB)
        await released
      }
      return await places(fh, length, offset)
    }
    t.after(() => { fs.places = places; release() })
    // one handle: a first read (its answer holds places), then a read at 16 MiB and, while it is asked, three just after it on other threads
    const reader = python(`
import os, threading, time, hashlib
fd = os.open(${JSON.stringify(join(m.dir, 'f.bin'))}, os.O_RDONLY)
MiB = 1 << 20
got = {}
def read(at):
    got[at] = hashlib.sha256(os.pread(fd, MiB, at * MiB)).hexdigest()
read(0)
time.sleep(0.5)
first = threading.Thread(target=read, args=(16,))
first.start()
time.sleep(0.3)
after = [threading.Thread(target=read, args=(at,)) for at in (17, 18, 19)]
for th in after: th.start()
for th in [first] + after: th.join()
os.close(fd)
print(' '.join(f'{at}:{got[at]}' for at in sorted(got)))
`, { timeoutMs: 30_000 })
    let whileHeld: number[]
    try {
      assert.equal(await heldAsk, 16 * MiB, 'the read at 16 MiB asked JavaScript')
      // the three later reads are sent meanwhile; give them time to ask, were they to
      await new Promise(resolve => setTimeout(resolve, 700))
      whileHeld = asks.filter(at => at > 16 * MiB)
    } finally {
      // never leave a FUSE request hanging on the spy (the mount could not be unmounted)
      release()
    }
    const r = await reader
    assert.equal(r.code, 0, r.stderr)
    const sha = (at: number): string => createHash('sha256').update(bytes.subarray(at * MiB, (at + 1) * MiB)).digest('hex')
    assert.equal(r.stdout.trim(), [0, 16, 17, 18, 19].map(at => `${at}:${sha(at)}`).join(' '), 'every read gave the exact bytes')
    assert.deepEqual(whileHeld, [], 'no request just after the ask in flight asked JavaScript while it was answered')
    assert.deepEqual(asks.filter(at => at > 16 * MiB), [], 'and none after: its answer placed them')
    assert.equal(m.service.retriedReads(), 0)
  })

  for (const places of [true, false]) {
    it(`a corrupt leaf in the middle of a sequential read fails it with EIO, never a short file (${places ? 'records placed, kept ahead' : 'read through the block store'})`, TEST, async t => {
      const m = await mountTestNode(t, { places })
      const bytes = randomBytes(8 * 1024 * 1024)
      await added(m, bytes)
      // leaf 20 of 32 lies 5 MiB in: past the first read and the pause, in the places answered ahead
      await flipRecordOf(m, bytes.subarray(20 * LEAF, 21 * LEAF))
      await sh('echo 1 > /proc/sys/vm/drop_caches')
      const read = await pausedRead(join(m.dir, 'f.bin'))
      assert.equal(read.sha, undefined, `the read does not complete (it read ${read.at} bytes as if the file ended there)`)
      assert.match(read.error ?? '', /Input\/output error/)
      assert.ok(read.at <= 20 * LEAF, `nothing past the corrupt leaf was read (stopped at ${read.at})`)
      if (places) assert.ok(m.service.retriedReads() > 0, 'the binding refused the record and asked again')
      // the file still has its size: the failure did not shorten it for the kernel
      assert.equal((await shOk(`stat -c %s ${q(join(m.dir, 'f.bin'))}`)).trim(), String(bytes.length))
    })
  }

  it('readers on several handles at once, at random offsets and sizes, read the exact bytes (records shared between threads, places kept per handle)', TEST, async t => {
    const { m, src } = await placedFile(t, 24 * 1024 * 1024 + 4321)
    const r = await python(`
import os, random, threading
random.seed(7)
size = os.path.getsize(${JSON.stringify(src)})
with open(${JSON.stringify(src)}, 'rb') as f:
    want = f.read()
bad = []
def reader(n):
    rnd = random.Random(n)
    with open(${JSON.stringify(join(m.dir, 'f.bin'))}, 'rb', buffering=0) as f:
        for i in range(60):
            if i % 3 == 0:
                at = rnd.randrange(0, size)
            else:
                at = min(size, at + rnd.randrange(0, 3 << 20))
            length = rnd.choice([1, 4096, 65536, 1 << 20, 3 << 20, rnd.randrange(1, 2 << 20)])
            f.seek(at)
            got = f.read(length)
            if got != want[at:at + length]:
                bad.append((n, at, length, len(got)))
threads = [threading.Thread(target=reader, args=(n,)) for n in range(6)]
for th in threads: th.start()
for th in threads: th.join()
print(len(bad), bad[:3])
`, { timeoutMs: 50_000 })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.trim(), '0 []', 'every read gave the exact bytes')
    assert.ok(m.service.placedReads() > 0, 'the reads were placed')
    assert.equal(m.service.retriedReads(), 0)
  })

  it('sequential readers on several handles at once over a record that fails its check: the bytes before it read exactly, it is never served, no reader hangs', TEST, async t => {
    // leaves of 384 KiB straddle the kernel's 1 MiB requests: two requests in flight share a record, one thread
    // reading it while the other waits for it. Here a record before a shared one fails its check: the thread that
    // waits must neither wait forever nor take wrong bytes
    const m = await mountTestNode(t, { places: true })
    const leaf = 393_216
    const bytes = randomBytes(24 * leaf + 777)
    await m.files.add('/f.bin', (async function * () { yield bytes })(), { chunker: parseChunker(`size-${leaf}`) })
    const src = join(await tempDir(t), 'f.bin')
    await writeFile(src, bytes)
    const badLeaf = 14
    await flipRecordOf(m, bytes.subarray(badLeaf * leaf, (badLeaf + 1) * leaf))
    await sh('echo 1 > /proc/sys/vm/drop_caches')
    const r = await python(`
import random, threading
with open(${JSON.stringify(src)}, 'rb') as f:
    want = f.read()
size = len(want)
bad_from, bad_to = ${badLeaf * leaf}, ${(badLeaf + 1) * leaf}
wrong = []
counts = {'exact': 0, 'refused': 0}
lock = threading.Lock()
done = threading.Event()
def dropper():
    # the kernel keeps what it read: dropped again and again, the records around the bad one are asked for again
    while not done.wait(0.05):
        with open('/proc/sys/vm/drop_caches', 'w') as d: d.write('1')
def reader(n):
    rnd = random.Random(n)
    for i in range(12):
        at = rnd.randrange(0, bad_from - (1 << 20))
        with open(${JSON.stringify(join(m.dir, 'f.bin'))}, 'rb', buffering=0) as f:
            f.seek(at)
            while at < size:
                length = 1 << 20
                touches = at < bad_to and at + length > bad_from
                try:
                    got = f.read(length)
                except OSError as e:
                    with lock:
                        if touches and e.errno == 5: counts['refused'] += 1
                        else: wrong.append((n, at, 'error', e.errno))
                    break
                # a read that runs into the bad leaf may stop short before it (the bytes before it are good)
                ok = got == want[at:at + length] if not touches else (got == want[at:at + len(got)] and at + len(got) <= bad_from)
                with lock:
                    if not ok: wrong.append((n, at, len(got)))
                    elif touches: counts['refused'] += 1
                    else: counts['exact'] += 1
                if touches or not got: break
                at += len(got)
threads = [threading.Thread(target=reader, args=(n,)) for n in range(6)]
drops = threading.Thread(target=dropper)
drops.start()
for th in threads: th.start()
for th in threads: th.join()
done.set()
drops.join()
print(len(wrong), counts['exact'], counts['refused'], wrong[:3])
`, { timeoutMs: 50_000 })
    assert.equal(r.code, 0, r.stderr)
    const [wrong, exact, refused] = r.stdout.trim().split(' ').map(Number)
    assert.equal(wrong, 0, `reads with wrong bytes or errors: ${r.stdout}`)
    assert.ok(exact > 0 && refused > 0, `reads exact ${exact}, stopped at the bad leaf ${refused}`)
    assert.ok(m.service.placedReads() > 0, 'the reads were placed')
    assert.ok(m.service.recordReads().refused > 0, 'the binding refused the record')
  })

  it('a handle reading while compaction moves its records and removes their pack keeps reading the right bytes', TEST, async t => {
    const m = await mountTestNode(t, { places: true })
    const a = randomBytes(4 * 1024 * 1024)
    const b = randomBytes(12 * 1024 * 1024)
    await added(m, a, '/a.bin')
    await added(m, b, '/b.bin')
    const packsBefore = await readdir(join(m.blocks, 'packs'))
    const work = await tempDir(t)
    await sh('echo 1 > /proc/sys/vm/drop_caches')
    // a reader that reads the first MiB, waits for the go, then reads the rest
    const reader = sh(`python3 -c ${q(`
import hashlib, os, time
h = hashlib.sha256()
with open(${JSON.stringify(join(m.dir, 'a.bin'))}, 'rb') as f:
    h.update(f.read(1 << 20))
    open(${JSON.stringify(join(work, 'ready'))}, 'w').close()
    for _ in range(300):
        if os.path.exists(${JSON.stringify(join(work, 'go'))}): break
        time.sleep(0.1)
    while True:
        chunk = f.read(1 << 20)
        if not chunk: break
        h.update(chunk)
print(h.hexdigest())
`)}`, { timeoutMs: 50_000 })
    for (let i = 0; i < 200 && !(await readdir(work)).includes('ready'); i++) await new Promise(resolve => setTimeout(resolve, 100))
    assert.ok((await readdir(work)).includes('ready'), 'the reader holds the file open')
    // b's leaves go: their pack is mostly dead, and compaction moves a's records to a new pack
    for (const leaf of await leavesOf(m, '/b.bin')) await m.blockstore.delete(leaf)
    await m.blockstore.compact()
    const packsAfter = await readdir(join(m.blocks, 'packs'))
    assert.ok(packsBefore.some(p => !packsAfter.includes(p)), `a pack was removed (${packsBefore.join(',')} → ${packsAfter.join(',')})`)
    await writeFile(join(work, 'go'), '')
    const done = await reader
    assert.equal(done.code, 0, done.stderr)
    assert.equal(done.stdout.trim(), createHash('sha256').update(a).digest('hex'), 'the open handle read the file exactly')
    assert.equal(m.service.retriedReads(), 0)
    // a new open reads the records where they are now
    await sh('echo 1 > /proc/sys/vm/drop_caches')
    const again = await shOk(`sha256sum ${q(join(m.dir, 'a.bin'))}`)
    assert.equal(again.split(' ')[0], createHash('sha256').update(a).digest('hex'))
  })
})

