/**
 * How `add DIR` gathers its small files into batches (cli/add-batch.ts):
 * within the file count and bytes, and within the manifest size the daemon
 * takes, so a tree of deep paths (up to 4 KiB each) is never refused for it.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Stats } from 'node:fs'
import { BATCH_BYTES, BATCH_FILES, PendingBatch, type LocalUpload } from '../../cli/add-batch.js'
import { encodeBatchHead, MAX_MANIFEST_BYTES } from '../../protocol/add-batch.js'

function upload (remote: string, size: number): LocalUpload {
  return { local: '/nowhere', remote, st: { size, mode: 0o100644, mtimeMs: 1_700_000_000_000.5 } as unknown as Stats }
}

/** Gather `files` as the directory add does; the batches sent. */
function batches (files: LocalUpload[]): LocalUpload[][] {
  const out: LocalUpload[][] = []
  const batch = new PendingBatch()
  for (const f of files) {
    if (batch.add(f)) continue
    out.push(batch.take())
    batch.add(f)
  }
  if (batch.files.length > 0) out.push(batch.take())
  return out
}

describe('add DIR batches', () => {
  it('keep every manifest within what the daemon takes, for paths of 4 KiB', () => {
    const deep = '/' + Array.from({ length: 15 }, (_, i) => `${'d'.repeat(250)}${i}`).join('/')
    const files = Array.from({ length: 1024 }, (_, i) => upload(`${deep}/f${i}`, 1))
    const sent = batches(files)
    assert.ok(sent.length > 1, 'deep paths split the 1,024 files')
    assert.equal(sent.flat().length, 1024)
    for (const b of sent) {
      const manifest = encodeBatchHead(b.map(f => ({ to: f.remote, size: f.st.size, mode: f.st.mode & 0o7777, mtime: Math.floor(f.st.mtimeMs) })))
      assert.ok(manifest.byteLength - 4 <= MAX_MANIFEST_BYTES, `a manifest of ${manifest.byteLength - 4} bytes`)
    }
  })

  it('keep to the file count and the bytes', () => {
    assert.deepEqual(batches(Array.from({ length: BATCH_FILES + 1 }, (_, i) => upload(`/f${i}`, 1))).map(b => b.length), [BATCH_FILES, 1])
    const big = Math.floor(BATCH_BYTES / 3)
    assert.deepEqual(batches(Array.from({ length: 4 }, (_, i) => upload(`/g${i}`, big))).map(b => b.length), [3, 1])
  })
})
