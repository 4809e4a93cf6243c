/**
 * Blocks and file-level helpers for the pack block store tests.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { open, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { packFileName } from '../../../node/blocks/pack-file.js'
import { INDEX_RANGE, decodeLocation, indexKey, type Location } from '../../../node/blocks/pack-index.js'
import { RECORD_HEADER } from '../../../node/blocks/pack-record.js'
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

/**
 * Flip the middle byte of every indexed block in the (closed) store at
 * `path`, in its pack; returns how many blocks were flipped. For tests of
 * what reads and the scrub do with blocks corrupted on disk.
 */
export async function flipEveryBlock (path: string): Promise<number> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  let flipped = 0
  try {
    for await (const value of db.values(INDEX_RANGE)) {
      const { pack, offset, length } = decodeLocation(value)
      const fh = await open(join(path, 'packs', packFileName(pack)), 'r+')
      try {
        const head = Buffer.alloc(RECORD_HEADER)
        await fh.read(head, 0, RECORD_HEADER, offset)
        const start = RECORD_HEADER + head[8]
        const at = offset + start + ((length - start) >> 1)
        const one = Buffer.alloc(1)
        await fh.read(one, 0, 1, at)
        one[0] ^= 0xff
        await fh.write(one, 0, 1, at)
        flipped++
      } finally {
        await fh.close()
      }
    }
  } finally {
    await db.close()
  }
  return flipped
}

/**
 * Run the node script `script` with `args`; once it has printed `ready`, let
 * it run `delayMs` more, then SIGKILL it (unless it has exited by itself).
 * Returns the whole lines it printed (a line cut by the kill is left out).
 */
export async function runAndKill (script: string, args: string[], delayMs: number): Promise<{ lines: string[], killed: boolean }> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => { out += chunk })
  const exited = new Promise<void>(resolve => child.on('exit', () => { resolve() }))
  while (!out.includes('ready\n')) {
    await new Promise(resolve => setTimeout(resolve, 5))
    if (child.exitCode !== null) throw new Error(`${script} exited early (${child.exitCode})`)
  }
  const timer = new Promise<boolean>(resolve => setTimeout(() => { resolve(true) }, delayMs))
  const killed = await Promise.race([timer, exited.then(() => false)])
  if (killed) child.kill('SIGKILL')
  await exited
  return { lines: out.split('\n').slice(0, -1), killed }
}

/** Which byte of a block {@link flipRecord} changes, and how. */
export interface FlipOptions {
  /** The middle byte of the block, or its last one. @default 'middle' */
  at?: 'middle' | 'last'
  /** XORed into the byte. @default 0xff */
  mask?: number
}

/**
 * XOR a byte of the block bytes of the record at `loc` (in `<dir>/packs`):
 * the middle one by default. (`{ at: 'last', mask: 1 }` changes the last
 * byte of a dag-pb node's Data and leaves the node decodable.)
 */
export async function flipRecord (dir: string, loc: { pack: number, offset: number, length: number }, options: FlipOptions = {}): Promise<void> {
  const fh = await open(join(dir, 'packs', packFileName(loc.pack)), 'r+')
  try {
    const start = loc.offset + RECORD_HEADER + 34
    const at = options.at === 'last' ? loc.offset + loc.length - 1 : start + ((loc.length - RECORD_HEADER - 34) >> 1)
    const one = Buffer.alloc(1)
    await fh.read(one, 0, 1, at)
    one[0] ^= options.mask ?? 0xff
    await fh.write(one, 0, 1, at)
  } finally {
    await fh.close()
  }
}

/** Where the index of the closed store at `dir` places the block `cid`. */
export async function recordLocation (dir: string, cid: CID): Promise<Location> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  try {
    const value = await db.get(indexKey(cid.multihash.bytes))
    if (value === undefined) throw new Error(`block ${cid.toString()} is not in the index of ${dir}`)
    return decodeLocation(value)
  } finally {
    await db.close()
  }
}
