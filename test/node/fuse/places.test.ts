/**
 * Reads of committed files placed in this node's pack records: the libfuse3
 * binding's threads read each record, check its length, multihash and
 * crc32c, and copy the asked range into the kernel's buffer
 * (node/fuse/record-places.ts, native/fuse3/fuse3.c "Reads from pack
 * records"). A real mount, a real block store on disk; the fault is real
 * too: a byte of a record flipped in its pack file.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { open, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseChunker } from '../../../node/content/index.js'
import { tempDir } from '../../helpers/temp.js'
import { mountTestNode, q, sh, shOk, type TestMount } from './helpers.js'

const TEST = { timeout: 60_000 }
const LEAF = 262_144

/** `bytes` added as `/f.bin` through the files API (not through the mount: a file the mount's cache does not hold). */
async function added (m: TestMount, bytes: Uint8Array): Promise<void> {
  await m.files.add('/f.bin', (async function * () { yield bytes })(), { chunker: parseChunker(`size-${LEAF}`) })
  assert.equal(m.service.mounts()[0]?.binding, 'libfuse3', 'the libfuse3 binding serves the mount (built by .ci/run)')
}

describe('FUSE reads placed in pack records', () => {
  it('a committed file reads byte-identical, whole and in ranges, its records read and checked by the binding', TEST, async t => {
    const m = await mountTestNode(t, { places: true })
    const bytes = randomBytes(6 * 1024 * 1024 + 12_345)
    await added(m, bytes)
    const src = join(await tempDir(t), 'f.bin')
    await writeFile(src, bytes)
    await sh('echo 1 > /proc/sys/vm/drop_caches')
    await shOk(`cmp ${q(src)} ${q(join(m.dir, 'f.bin'))}`)
    const range = await shOk(`dd if=${q(join(m.dir, 'f.bin'))} bs=4096 skip=700 count=3 2>/dev/null | od -An -tx1 | tr -d ' \\n' | head -c 64`)
    assert.equal(range, bytes.subarray(700 * 4096, 700 * 4096 + 32).toString('hex'))
    assert.ok(m.service.placedReads() > 0, 'the reads were placed')
    assert.equal(m.service.retriedReads(), 0, 'every record passed the binding\'s checks (its crc32c agrees with the store\'s)')
  })

  it('a record that fails its check is never served: the read falls back to the block store, which refuses it', TEST, async t => {
    const m = await mountTestNode(t, { places: true })
    const bytes = randomBytes(8 * LEAF)
    await added(m, bytes)
    // one byte of the fourth leaf's record, on disk
    const packs = join(m.blocks, 'packs')
    let flipped = false
    for (const name of await readdir(packs)) {
      const at = (await readFile(join(packs, name))).indexOf(bytes.subarray(3 * LEAF, 3 * LEAF + 64))
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
    await sh('echo 1 > /proc/sys/vm/drop_caches')
    const head = await shOk(`dd if=${q(join(m.dir, 'f.bin'))} bs=${LEAF} count=3 2>/dev/null | sha256sum`)
    assert.equal(head.split(' ')[0], createHash('sha256').update(bytes.subarray(0, 3 * LEAF)).digest('hex'), 'the leaves before it read well')
    assert.ok(m.service.placedReads() > 0, 'those reads were placed')
    const bad = await sh(`dd if=${q(join(m.dir, 'f.bin'))} of=/dev/null bs=${LEAF} skip=3 count=1`)
    assert.notEqual(bad.code, 0, 'the corrupt leaf is not served')
    assert.match(bad.stderr, /Input\/output error/)
    assert.ok(m.service.retriedReads() > 0, 'the binding refused the record and asked again')
  })
})
