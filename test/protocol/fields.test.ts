/**
 * The shared field checks of the wire codecs: the codec's error and prefix
 * come from its `fail`, the wording after it is the same for every codec.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { InvalidManifestError, InvalidMessageError } from '../../protocol/errors.js'
import { fieldChecks } from '../../protocol/fields.js'

const check = fieldChecks(reason => { throw new InvalidMessageError(`invalid test message: ${reason}`) })
const rejects = (fn: () => unknown, message: RegExp): void => {
  assert.throws(fn, (err: any) => err instanceof InvalidMessageError && /^invalid test message: /.test(err.message) && message.test(err.message))
}
const raw = CID.createV1(0x55, Digest.create(0x12, new Uint8Array(32).fill(7)))

describe('field checks', () => {
  it('throw the codec\'s own error with its prefix', () => {
    const manifest = fieldChecks(reason => { throw new InvalidManifestError(`invalid manifest: ${reason}`) })
    assert.throws(() => manifest.int('1', 'k', 1, 16), { name: 'InvalidManifestError', message: 'invalid manifest: k must be an integer in 1..16, got "1"' })
  })

  it('check shapes: exact keys plus optional ones', () => {
    assert.deepEqual(check.shape({ a: 1, b: 2 }, 'thing', ['a'], ['b']), { a: 1, b: 2 })
    rejects(() => check.shape({ b: 2 }, 'thing', ['a'], ['b']), /thing lacks field a$/)
    rejects(() => check.shape({ a: 1, c: 3 }, 'thing', ['a']), /thing has unexpected field "c"$/)
    rejects(() => check.shape([], 'thing', []), /thing is not a map$/)
    rejects(() => check.version(2, 'thing', 1), /thing has unsupported version 2$/)
    assert.equal(check.type({ type: 'b' }, 'request', { a: [], b: [] }), 'b')
    rejects(() => check.type({ type: 'toString' }, 'request', { a: [] }), /unknown request type "toString"$/)
  })

  it('check scalars', () => {
    assert.ok(Object.is(check.int(-0, 'n', 0, 5), 0))
    rejects(() => check.int(1.5, 'n', 0), /n must be an integer in 0\.\.9007199254740991, got 1\.5$/)
    rejects(() => check.bool(1, 'more'), /more is not a boolean$/)
    rejects(() => check.text('abc', 'message', 2), /message longer than 2$/)
    assert.equal(check.text('a\uD800', 'message', 2), 'a\uD800')
    rejects(() => check.wellFormedText('a\uD800', 'message', 2), /lone surrogate/)
    rejects(() => check.peerId('', 'author', 128), /author is empty$/)
    rejects(() => check.peerId('__proto__', 'author', 128), /__proto__/)
  })

  it('copy bytes unless asked for a view', () => {
    const given = Buffer.from([1, 2, 3])
    const copy = check.bytes(given, 'sig', 1, 4)
    assert.ok(copy !== given && Object.getPrototypeOf(copy) === Uint8Array.prototype)
    assert.deepEqual(copy, new Uint8Array([1, 2, 3]))
    assert.equal(check.bytes(given, 'data', 0, 4, { view: true }), given)
    rejects(() => check.bytes(given, 'sig', 4, 8), /sig of 3 bytes \(4\.\.8 allowed\)$/)
  })

  it('check lists, pairs and CIDs', () => {
    rejects(() => check.list([1, 2], 'cids', 1, 1), /cids has 2 items \(1\.\.1 allowed\)$/)
    rejects(() => check.pair([1], 'dot', ['author', 'seq']), /dot is not a pair \[author, seq\]$/)
    const copy = check.cid(raw, 'cid', { v1: true, codecs: [0x55] })
    assert.ok(copy.equals(raw) && copy !== raw)
    rejects(() => check.cid('x', 'cid'), /cid is not a CID$/)
    rejects(() => check.cid(raw, 'manifest', { codecs: [0x71] }), /has codec 0x55$/)
    rejects(() => check.cid(CID.createV1(0x55, Digest.create(0x13, new Uint8Array(64))), 'cid'), /is not sha2-256$/)
    const v0 = CID.createV0(Digest.create(0x12, new Uint8Array(32)))
    assert.ok(check.cid(v0, 'cid').equals(v0))
    rejects(() => check.cid(v0, 'cid', { v1: true }), /is not a CIDv1$/)
  })
})
