/**
 * normalizePath's one-scan path for paths already normal gives exactly what
 * the full check gives, for every input: the same path, or the same refusal.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_NAME_BYTES, MAX_PATH_BYTES, normalizePath } from '../../protocol/paths.js'
import { InvalidPathError } from '../../protocol/errors.js'

/** The full check, as normalizePath made it before its fast path: the reference. */
function reference (input: string): string {
  if (typeof input !== 'string' || input.length === 0) throw new Error('InvalidPathError')
  if (!input.startsWith('/')) throw new Error('InvalidPathError')
  if (input.includes('\0')) throw new Error('InvalidPathError')
  if (Buffer.byteLength(input) > MAX_PATH_BYTES) throw new Error('InvalidPathError')
  const segments = input.split('/').filter((s, i, all) => !(s === '' && (i === 0 || i === all.length - 1)))
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..' || Buffer.byteLength(s) > MAX_NAME_BYTES) throw new Error('InvalidPathError')
  }
  return '/' + segments.join('/')
}

/** What normalizePath answers: the path, or the name of its error. */
function answer (f: (input: string) => string, input: string): string {
  try { return `ok ${f(input)}` } catch (err: any) { return `refused ${err instanceof InvalidPathError || err.message === 'InvalidPathError' ? 'InvalidPathError' : String(err)}` }
}

/** A small deterministic generator (xorshift32). */
function generator (seed: number): () => number {
  let x = seed
  return () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 2 ** 32 }
}

describe('normalizePath', () => {
  it('answers as the full check does at the edges of every rule', () => {
    const cases = [
      '/', '//', '/a', '/a/', '/a//', '/.', '/..', '/...', '/.a', '/a.', '/a/.', '/a/..', '/a/./b', '/a/../b', '/a/.../b',
      '/a//b', 'a', '', ' /a', '/a\0b', '/é', '/a/é/b', '/\u{1F600}', '/a\u{7f}',
      '/' + 'x'.repeat(MAX_NAME_BYTES), '/' + 'x'.repeat(MAX_NAME_BYTES + 1), '/a/' + 'x'.repeat(MAX_NAME_BYTES) + '/b',
      '/' + 'é'.repeat(128), '/' + 'é'.repeat(127),
      '/' + 'ab/'.repeat(1365).slice(0, -1), '/' + 'ab/'.repeat(1366).slice(0, -1),
      '/' + 'x'.repeat(MAX_PATH_BYTES - 1), '/' + 'a/'.repeat(2047) + 'a', '/' + 'a/'.repeat(2048)
    ]
    for (const input of cases) assert.equal(answer(normalizePath, input), answer(reference, input), JSON.stringify(input.slice(0, 40)))
  })

  it('answers as the full check does for random strings of path characters', () => {
    const random = generator(0x5eed)
    const alphabet = ['/', '/', '/', '.', '.', 'a', 'b', '\0', 'é', ' ', '\u{7f}']
    for (let n = 0; n < 20_000; n++) {
      let input = ''
      const length = Math.floor(random() * 12)
      for (let i = 0; i < length; i++) input += alphabet[Math.floor(random() * alphabet.length)]
      assert.equal(answer(normalizePath, input), answer(reference, input), JSON.stringify(input))
    }
  })

  it('gives a normal path back as it is, and normalises the others', () => {
    for (const path of ['/library/d0001/f0000001.bin', '/a', '/é/b']) assert.equal(normalizePath(path), path)
    assert.equal(normalizePath('/a/b/'), '/a/b')
  })
})
