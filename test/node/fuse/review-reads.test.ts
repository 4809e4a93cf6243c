/**
 * The mount's read path: every handle reads the exact bytes of the version
 * it opened. A real mount served by this process, over a real block store.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseChunker } from '../../../node/content/index.js'
import { tempDir } from '../../helpers/temp.js'
import { mountTestNode, otherNode, python, sh, type TestMount } from './helpers.js'

const TEST = { timeout: 60_000 }
const MiB = 1024 * 1024

/** `bytes` written as `path` through the files API (not the mount): as another node's write arrives. */
async function added (m: TestMount, bytes: Uint8Array, path = '/f.bin'): Promise<void> {
  await m.files.add(path, (async function * () { yield bytes })(), { chunker: parseChunker('size-262144') })
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('FUSE reads of a file whose content is replaced', () => {
  for (const places of [true, false]) {
    it(`a file opened after its content was replaced reads the new content, while a handle opened before reads the old (${places ? 'records placed' : 'through the block store'})`, TEST, async t => {
      const m = await mountTestNode(t, { places })
      const v1 = randomBytes(4 * MiB)
      // the same size: only the content tells the versions apart
      const v2 = randomBytes(4 * MiB)
      await added(m, v1)
      await sh('echo 1 > /proc/sys/vm/drop_caches')
      const work = await tempDir(t)
      // h1 reads the first MiB, then (once v2 is in) h2 opens; h1 reads on, h2 reads all, h1 all again;
      // h1 and h2 close and h3 opens and reads all
      const reader = python(`
import hashlib, os, time
work = ${JSON.stringify(work)}
path = ${JSON.stringify(join(m.dir, 'f.bin'))}
def whole(fd):
    out = b''
    while True:
        c = os.pread(fd, 1 << 20, len(out))
        if not c: return out
        out += c
h1 = os.open(path, os.O_RDONLY)
os.pread(h1, 1 << 20, 0)
open(os.path.join(work, 'ready'), 'w').close()
for _ in range(400):
    if os.path.exists(os.path.join(work, 'go')): break
    time.sleep(0.05)
h2 = os.open(path, os.O_RDONLY)
os.pread(h1, 3 << 20, 1 << 20)
second = whole(h2)
first = whole(h1)
os.close(h1)
os.close(h2)
h3 = os.open(path, os.O_RDONLY)
third = whole(h3)
os.close(h3)
print(hashlib.sha256(first).hexdigest(), hashlib.sha256(second).hexdigest(), hashlib.sha256(third).hexdigest())
`, { timeoutMs: 40_000 })
      let ready = false
      for (let i = 0; i < 300 && !ready; i++) {
        ready = (await readdir(work)).includes('ready')
        if (!ready) await new Promise(resolve => setTimeout(resolve, 50))
      }
      try {
        assert.ok(ready, 'the reader holds the file open')
        await added(m, v2)
        // past the kernel's attribute timeout (1 s): the next open sees the new version
        await new Promise(resolve => setTimeout(resolve, 1500))
      } finally {
        await writeFile(join(work, 'go'), '')
      }
      const r = await reader
      assert.equal(r.code, 0, r.stderr)
      const [first, second, third] = r.stdout.trim().split(' ')
      assert.equal(second, sha(v2), 'the handle opened after the replacement reads the new content')
      assert.equal(first, sha(v1), 'the handle opened before it reads the version it opened')
      assert.equal(third, sha(v2), 'a handle opened once the old one closed reads the new content')
    })
  }

  for (const places of [true, false]) {
    it(`a file opened while the kernel still holds the size of the version before reads the new version whole (${places ? 'records placed' : 'through the block store'})`, TEST, async t => {
      // a long attribute timeout: the kernel holds the first version's size for the whole test
      const m = await mountTestNode(t, { places, fuse: { attrTimeout: 30 } })
      const other = await otherNode(t, m)
      const path = join(m.dir, 'f.bin')
      const v1 = randomBytes(100_000)
      await other.add('/f.bin', v1)
      assert.equal((await sh(`stat -c %s ${path}`)).stdout.trim(), '100000', 'the kernel holds the first size')
      // another node's version three times as long arrives
      const v2 = randomBytes(300_000)
      await other.add('/f.bin', v2)
      // a program reading to the end, and one trusting fstat's size: before, both read the new bytes cut at 100,000
      const cat = await sh(`cat ${path} | sha256sum`)
      assert.equal(cat.stdout.split(' ')[0], sha(v2), 'cat reads the new version whole')
      const read = await readFile(path)
      assert.equal(read.length, v2.length)
      assert.equal(sha(read), sha(v2), 'a read of the size fstat says reads the new version whole')
      assert.equal((await sh(`stat -c %s ${path}`)).stdout.trim(), '300000', 'stat tells the new size')
    })
  }
})
