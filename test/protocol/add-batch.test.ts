/**
 * A batch manifest's times (protocol/add-batch.ts): an `mtime` past the
 * latest a date holds is refused with a typed error, like every other
 * malformed field; the latest one is a time.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { decodeManifest } from '../../protocol/add-batch.js'
import { MAX_TIME } from '../../protocol/time.js'

const manifest = (mtime: number): Uint8Array => new TextEncoder().encode(JSON.stringify([{ to: '/a.txt', size: 3, mtime }]))

describe('batch manifest times', () => {
  it('refuses an mtime no clock gives, and takes the latest a date holds', () => {
    for (const mtime of [MAX_TIME + 1, Number.MAX_SAFE_INTEGER, -1, 1.5]) {
      assert.throws(() => decodeManifest(manifest(mtime)), (err: any) => err.name === 'InvalidArgumentError' && /invalid mtime/.test(err.message), String(mtime))
    }
    assert.deepEqual(decodeManifest(manifest(MAX_TIME)), [{ to: '/a.txt', size: 3, mtime: MAX_TIME }])
  })
})
