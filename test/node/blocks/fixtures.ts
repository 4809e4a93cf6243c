/**
 * Blocks and file-level helpers for the pack block store tests.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { rawCID } from '../../../node/blocks/verify.js'
import { randomBytes } from '../../helpers/bytes.js'
import type { CID } from 'multiformats/cid'

/** `count` raw blocks of `size` random bytes (deterministic in `seed`). */
export function blocksOf (count: number, size: number, seed: number): Array<{ cid: CID, bytes: Uint8Array }> {
  return Array.from({ length: count }, (_, i) => {
    const bytes = randomBytes(size, seed * 100_000 + i)
    return { cid: rawCID(bytes), bytes }
  })
}

/** Assert `promise` rejects with an error named `name`. */
export async function rejectsNamed (promise: Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(promise, (err: any) => {
    assert.equal(err?.name, name, `expected ${name}, got ${String(err?.name)}: ${String(err?.message)}`)
    return true
  })
}

/** The pack files of the store at `path`, full paths, in pack order. */
export async function packFiles (path: string): Promise<string[]> {
  const dir = join(path, 'packs')
  return (await readdir(dir)).filter(n => n.endsWith('.pack')).sort().map(n => join(dir, n))
}

/** Disk use of `dir` in KiB (`du -sk`). */
export function diskUsageKiB (dir: string): number {
  return parseInt(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0], 10)
}

/** Offset of the `i`th record in a pack of equal-size records (sha2-256 keys). */
export function recordOffset (i: number, size: number): number {
  return 8 + i * (9 + 34 + size)
}
