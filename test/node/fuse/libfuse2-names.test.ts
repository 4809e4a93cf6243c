/**
 * The libfuse2 fallback (fuse-native) decodes names before JavaScript sees
 * them, so a byte that is not UTF-8 arrives as U+FFFD: two such names would
 * be one file. Over libfuse2 a name with U+FFFD is refused with EILSEQ, so
 * no write replaces another. This file mounts through fuse-native
 * (SHOAL_FUSE_BINDING=libfuse2, set before anything loads a binding).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FUSE_BINDING_ENV } from '../../../node/fuse/adapter.js'
import { eventually, mountTestNode, python } from './helpers.js'

process.env[FUSE_BINDING_ENV] = 'libfuse2'

describe('names over the libfuse2 binding', () => {
  it('a name that is not UTF-8 (or holds U+FFFD) is refused with EILSEQ, so two such names never become one file', { timeout: 60_000 }, async t => {
    const m = await mountTestNode(t)
    assert.equal(m.service.mounts()[0].binding, 'libfuse2')
    const r = await python(`
import errno, json, os
os.chdir(${JSON.stringify(m.dir)})
def code(fn):
    try:
        fn()
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
def write(p, data):
    with open(p, 'wb') as f: f.write(data)
os.mkdir('d')
print(json.dumps({
  'create u\\\\xff': code(lambda: write(b'u\\xff', b'one')),
  'create u\\\\xfe': code(lambda: write(b'u\\xfe', b'two')),
  'mkdir d/\\\\xc0\\\\xaf': code(lambda: os.mkdir(b'd/\\xc0\\xaf')),
  'rename to \\\\xed\\\\xa0\\\\x80': code(lambda: os.rename('d', b'\\xed\\xa0\\x80')),
  'create U+FFFD itself': code(lambda: write('\\ufffd', b'x')),
  'create caf\\u00e9': code(lambda: write('caf\\u00e9', b'ok')),
  'names': sorted(os.listdir('.')),
}))
`)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), {
      'create u\\xff': 'EILSEQ',
      'create u\\xfe': 'EILSEQ',
      'mkdir d/\\xc0\\xaf': 'EILSEQ',
      'rename to \\xed\\xa0\\x80': 'EILSEQ',
      'create U+FFFD itself': 'EILSEQ',
      'create caf\u00e9': 'ok',
      names: ['caf\u00e9', 'd']
    })
    await eventually(async () => (await m.namespace.lookup('/caf\u00e9'))?.type === 'file', 10_000, 'café is committed')
    assert.deepEqual((await m.namespace.list('/')).map(e => e.name).sort(), ['caf\u00e9', 'd'], 'no other name reached the namespace')
  })
})
