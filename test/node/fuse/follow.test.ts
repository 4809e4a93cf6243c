/**
 * A read handle follows its file as it grows: when a longer version of the
 * path begins with every byte of the one the handle reads (an append, made
 * here or on another node), reads past the old end read the new bytes
 * (`tail -f` of a growing log); a longer version with other bytes leaves the
 * handle on the version it opened. And the check itself
 * (node/fuse/appended.ts), on a real block store. A real mount served by
 * this process; new versions are added beside it through the files API, as
 * another node's write arrives.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { access, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseChunker } from '../../../node/content/index.js'
import { isAppendOf, type FileEntry } from '../../../node/fuse/appended.js'
import { RecordPlaces } from '../../../node/fuse/record-places.js'
import type { FileLayout } from '../../../node/content/file-layout.js'
import type { LeafSpan } from '../../../node/content/ranged-reader.js'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { openBlockStore, tempDir } from '../../helpers/temp.js'
import { eventually, mountTestNode, python, tailFollow, type TestMount } from './helpers.js'

const TEST = { timeout: 60_000 }
const MiB = 1024 * 1024

/** `bytes` as the version of `path`, added through the files API (not the mount). */
async function added (m: TestMount, path: string, bytes: Uint8Array): Promise<FileEntry> {
  await m.files.add(path, (async function * () { yield bytes })(), { chunker: parseChunker('fastcdc') })
  const entry = await m.namespace.stat(path)
  assert.equal(entry.type, 'file')
  return entry as FileEntry
}

/** A reader of a file in the mount that goes on as the file grows ({@link growingReader}). */
interface GrowingReader {
  /** Resolves once it has read the file whole as it was when opened. */
  ready: () => Promise<void>
  /** Every byte it read, once it has stopped (it must exit 0). */
  bytes: () => Promise<Buffer>
}

/**
 * A python reader of `path` (in the mount): it opens the file, reads it
 * whole, says it is ready, then polls `fstat` and reads on from where it is
 * every 0.1 s for up to `seconds`, until it has `want` bytes.
 */
function growingReader (path: string, work: string, want: number, seconds = 20): GrowingReader {
  const ready = join(work, 'ready')
  const run = python(`
import os, time
fd = os.open(${JSON.stringify(path)}, os.O_RDONLY)
data = b''
def more():
    global data
    while True:
        c = os.pread(fd, 1 << 20, len(data))
        if not c: return
        data += c
more()
open(${JSON.stringify(ready)}, 'w').close()
deadline = time.time() + ${seconds}
while len(data) < ${want} and time.time() < deadline:
    time.sleep(0.1)
    os.fstat(fd)
    more()
os.close(fd)
print(data.hex())
`, { timeoutMs: 40_000 + seconds * 1000 })
  return {
    // the flag is outside the mount: this process may look at it itself
    ready: async () => { await eventually(async () => await access(ready).then(() => true), 20_000, 'the reader read the first version') },
    bytes: async () => {
      const r = await run
      assert.equal(r.code, 0, r.stderr)
      return Buffer.from(r.stdout.trim(), 'hex')
    }
  }
}

/** Run a python writer to its end (it must exit 0). */
async function written (script: string): Promise<void> {
  const r = await python(script, { timeoutMs: 30_000 })
  assert.equal(r.code, 0, r.stderr)
}

describe('a read handle follows its file as it grows', () => {
  it('tail -f of a file that grows by appends prints every line, as each new version arrives', TEST, async t => {
    const m = await mountTestNode(t)
    let text = 'line 1\n'
    await added(m, '/app.log', Buffer.from(text))
    const printed = tailFollow(t, join(m.dir, 'app.log'))
    await eventually(async () => printed() === text, 10_000, 'tail prints the first line')
    for (let n = 2; n <= 4; n++) {
      text += `line ${n}, appended elsewhere\n`
      await added(m, '/app.log', Buffer.from(text))
      await eventually(async () => printed() === text, 10_000, `tail prints line ${n} (printed: ${JSON.stringify(printed())})`)
    }
  })

  it('tail -f of a file that a program here holds open and appends to prints each line as it is written, before the writer closes it', TEST, async t => {
    const m = await mountTestNode(t, { places: true })
    await added(m, '/held.log', Buffer.from('first\n'))
    const path = join(m.dir, 'held.log')
    const printed = tailFollow(t, path)
    await eventually(async () => printed() === 'first\n', 10_000, 'tail prints the committed version')
    const work = await tempDir(t)
    const flag = (name: string): string => JSON.stringify(join(work, name))
    // the writer appends a line, then waits (holding the file open) until told to append the next
    const writer = python(`
import os, time
fd = os.open(${JSON.stringify(path)}, os.O_WRONLY | os.O_APPEND)
def wait(name):
    for _ in range(600):
        if os.path.exists(name): return
        time.sleep(0.05)
os.write(fd, b'second\\n')
wait(${flag('go')})
os.write(fd, b'third\\n')
wait(${flag('done')})
os.close(fd)
`, { timeoutMs: 60_000 })
    await eventually(async () => printed() === 'first\nsecond\n', 10_000, `tail prints the line the open writer appended (printed: ${JSON.stringify(printed())})`)
    await writeFile(join(work, 'go'), '')
    await eventually(async () => printed() === 'first\nsecond\nthird\n', 10_000, `tail prints the next line (printed: ${JSON.stringify(printed())})`)
    await writeFile(join(work, 'done'), '')
    const r = await writer
    assert.equal(r.code, 0, r.stderr)
    // the writer's version committed, tail goes on with the versions written elsewhere (it does not keep the staged copy)
    const text = 'first\nsecond\nthird\n'
    await eventually(async () => (await m.namespace.stat('/held.log')).type === 'file' && (await m.namespace.stat('/held.log') as FileEntry).size === text.length, 10_000, 'the writer\'s version committed')
    await added(m, '/held.log', Buffer.from(text + 'fourth, from elsewhere\n'))
    await eventually(async () => printed() === text + 'fourth, from elsewhere\n', 10_000, `tail prints the line added elsewhere (printed: ${JSON.stringify(printed())})`)
  })

  it('a reader follows a file rewritten here through O_TRUNC with its bytes and more, once the writer\'s version is committed', TEST, async t => {
    const m = await mountTestNode(t, { places: true })
    await added(m, '/truncated.log', Buffer.from('alpha\n'))
    const path = join(m.dir, 'truncated.log')
    const work = await tempDir(t)
    const reader = growingReader(path, work, 'alpha\nbeta\n'.length, 15)
    await reader.ready()
    // staged with a cut to nothing (no byte of it still the first version's), held open while the reader polls
    await written(`
import os, time
fd = os.open(${JSON.stringify(path)}, os.O_WRONLY | os.O_TRUNC)
os.write(fd, b'alpha\\nbeta\\n')
time.sleep(1.5)
os.close(fd)
`)
    assert.equal((await reader.bytes()).toString(), 'alpha\nbeta\n')
  })

  it('a handle does not read on in a file that a program here holds open after changing its first bytes', TEST, async t => {
    const m = await mountTestNode(t, { places: true })
    await added(m, '/rewritten.log', Buffer.from('first\n'))
    const path = join(m.dir, 'rewritten.log')
    const work = await tempDir(t)
    const reader = growingReader(path, work, 13, 3)
    await reader.ready()
    // its first line rewritten, a line added, the file held open while the reader polls
    await written(`
import os, time
fd = os.open(${JSON.stringify(path)}, os.O_WRONLY)
os.pwrite(fd, b'FIRST\\n', 0)
os.pwrite(fd, b'second\\n', 6)
time.sleep(4)
os.close(fd)
`)
    const read = await reader.bytes()
    assert.equal(read.subarray(0, 6).toString(), 'first\n', 'the version it opened')
    // past its end: never the writer's bytes (the kernel may fill what the handle did not answer: docs/fuse.md)
    assert.ok(!read.subarray(6).toString().includes('second'), `read ${JSON.stringify(read.toString())}`)
  })

  for (const places of [true, false]) {
    it(`a handle open on a file of several leaves reads the bytes appended to it (${places ? 'records placed' : 'through the block store'})`, TEST, async t => {
      const m = await mountTestNode(t, { places })
      const v1 = randomBytes(5 * MiB + 12_345)
      await added(m, '/grown.bin', v1)
      const work = await tempDir(t)
      const v2 = Buffer.concat([v1, randomBytes(MiB + 777)])
      const reader = growingReader(join(m.dir, 'grown.bin'), work, v2.length)
      await reader.ready()
      await added(m, '/grown.bin', v2)
      const read = await reader.bytes()
      assert.equal(read.length, v2.length, 'the handle read the appended bytes')
      assert.ok(read.equals(v2), 'they are the new version\'s')
    })
  }

  it('a handle open on a file replaced by a longer version with other bytes goes on reading the version it opened', TEST, async t => {
    const m = await mountTestNode(t, { places: true })
    const v1 = randomBytes(3 * MiB + 5)
    await added(m, '/replaced.bin', v1)
    const work = await tempDir(t)
    // its first byte differs: not an append
    const v2 = Buffer.concat([v1, randomBytes(MiB)])
    v2[0] ^= 0xff
    const reader = growingReader(join(m.dir, 'replaced.bin'), work, v2.length, 4)
    await reader.ready()
    // the looks at the path from here on: the mount's, through the namespace it was given
    let looks = 0
    const lookup = m.namespace.lookup.bind(m.namespace)
    m.namespace.lookup = async (path: string) => { if (path === '/replaced.bin') looks++; return await lookup(path) }
    await added(m, '/replaced.bin', v2)
    const read = await reader.bytes()
    // ~40 polls past the end, each a fstat and a read: the version is compared once, not at each (the attributes'
    // own looks, about one a second as their cache runs out, are counted too)
    assert.ok(looks <= 10, `${looks} looks at the path`)
    assert.ok(read.subarray(0, v1.length).equals(v1), 'the version it opened')
    // past its end the kernel, which keeps one size per file (the newer one's), may fill what the handle did not
    // answer (docs/fuse.md, "Open files keep their version"): never with the other version's bytes
    const past = read.subarray(v1.length)
    assert.ok(past.length === 0 || !past.equals(v2.subarray(v1.length, read.length)), 'no byte of the other version past its end')
    // a new open reads the new version
    const fresh = await python(`import hashlib; print(open(${JSON.stringify(join(m.dir, 'replaced.bin'))}, 'rb').read().hex())`, { timeoutMs: 20_000 })
    assert.equal(fresh.stdout.trim(), v2.toString('hex'))
  })

  it('the check: an append of one leaf or of several, an empty first version, other bytes anywhere, a shorter or equal version, and the bound on what it compares', TEST, async t => {
    const m = await mountTestNode(t)
    const check = async (older: FileEntry, newer: FileEntry, maxComparedBytes?: number): Promise<boolean> => await isAppendOf({ files: m.files }, older, newer, { maxComparedBytes })
    const small = await added(m, '/a', Buffer.from('one line\n'))
    const smallMore = await added(m, '/b', Buffer.from('one line\nand another\n'))
    assert.equal(await check(small, smallMore), true, 'a single leaf that grew')
    assert.equal(await check(smallMore, small), false, 'a shorter version')
    assert.equal(await check(small, small), false, 'the same version')
    assert.equal(await check(await added(m, '/c', Buffer.from('ONE line\nand another\n')), smallMore), false, 'the same length, other bytes')
    assert.equal(await check(small, await added(m, '/d', Buffer.from('one linE\nand another\n'))), false, 'its last byte differs')
    assert.equal(await check(await added(m, '/e', Buffer.alloc(0)), small), true, 'an empty first version')

    const big = randomBytes(6 * MiB)
    const older = await added(m, '/big1', big)
    const longer = Buffer.concat([big, randomBytes(100_000)])
    const newer = await added(m, '/big2', longer)
    assert.equal(await check(older, newer), true, 'several leaves, the last one grew')
    // only the last leaf of the older version is read: a bound below it refuses, one above accepts
    const layout = await m.files.layoutOf(older)
    const last = (await layout.spans(0, big.length)).at(-1)
    assert.ok(last !== undefined && last.base > 0, 'the file has several leaves')
    assert.equal(await check(older, newer, big.length - last.base - 1), false, 'more to compare than allowed')
    assert.equal(await check(older, newer, big.length - last.base), true, 'just the last leaf compared')
    const early = Buffer.from(longer)
    early[10] ^= 1
    assert.equal(await check(older, await added(m, '/big3', early)), false, 'a byte of its first leaf differs')
    const late = Buffer.from(longer)
    late[big.length - 1] ^= 1
    assert.equal(await check(older, await added(m, '/big4', late)), false, 'its last byte differs')
  })
})

describe('RecordPlaces.follow', () => {
  it('places the newer version\'s leaves, keeps the packs of the version it left, and lets go of those only older versions used', async t => {
    // one leaf a pack: each version's last leaf in a pack of its own
    const store = await openBlockStore(t, undefined, { maxPackBytes: 300 * 1024 })
    const live = new Map<number, number>()
    const blockstore = {
      locate: store.locate.bind(store),
      holdPack: async (pack: number) => {
        const held = await store.holdPack(pack)
        live.set(pack, (live.get(pack) ?? 0) + 1)
        return { fd: held.fd, release: () => { live.set(pack, (live.get(pack) ?? 0) - 1); held.release() } }
      }
    }
    const leaf = async (bytes: Uint8Array): Promise<{ cid: CID, bytes: Uint8Array }> => {
      const cid = CID.createV1(raw.code, await sha256.digest(bytes))
      await store.put(cid, bytes)
      // placed only once committed
      await store.commit()
      return { cid, bytes }
    }
    const layoutOf = (leaves: Array<{ cid: CID, bytes: Uint8Array }>): Pick<FileLayout, 'spans' | 'size'> => {
      const spans: LeafSpan[] = []
      let base = 0
      for (const l of leaves) { spans.push({ base, size: l.bytes.byteLength, cid: l.cid }); base += l.bytes.byteLength }
      return { size: base, spans: async (start: number, end: number) => spans.filter(s => s.base < end && s.base + s.size > start) }
    }
    const packOf = async (l: { cid: CID }): Promise<number> => (await store.locate(l.cid))?.pack as number
    const K = 256 * 1024
    const first = await leaf(randomBytes(K))
    const v1Last = await leaf(randomBytes(K / 2))
    // each append grows the last leaf: a new block, in a new pack
    const v2Last = await leaf(Buffer.concat([v1Last.bytes, randomBytes(K / 4)]))
    const v3Last = await leaf(Buffer.concat([v2Last.bytes, randomBytes(K / 8)]))
    const packs = await Promise.all([first, v1Last, v2Last, v3Last].map(packOf))
    assert.equal(new Set(packs).size, 4, 'each leaf in a pack of its own')
    const places = new RecordPlaces({ blockstore, openLayout: async () => layoutOf([first, v1Last]) })
    t.after(() => { places.close() })
    const placed = async (offset: number, length: number): Promise<number[]> => (await places.places(offset, length))?.map(p => p.length) ?? []
    assert.deepEqual(await placed(0, K + K / 2), [K, K / 2])
    places.follow(async () => layoutOf([first, v2Last]))
    assert.deepEqual(await placed(K, K), [v2Last.bytes.byteLength], 'the newer version\'s last leaf, whole')
    assert.deepEqual([packs[0], packs[1], packs[2]].map(p => live.get(p)), [1, 1, 1], 'the version left is still held')
    places.follow(async () => layoutOf([first, v3Last]))
    assert.deepEqual(await placed(0, 2 * K), [K, v3Last.bytes.byteLength])
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(packs.map(p => live.get(p)), [1, 0, 1, 1], 'only the pack of the first version\'s last leaf let go')
    places.close()
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(packs.map(p => live.get(p)), [0, 0, 0, 0], 'all let go at the close')
  })
})
