/**
 * The read-only gateway of a real daemon, spoken to over real HTTP: an
 * independent trustless-gateway client (Helia's broker) fetching and
 * verifying a multi-block file and a nested directory, CARs checked block by
 * block with @ipld/car (whole DAGs, paths, dag-scope, entity-bytes), ranged
 * reads of files, directory pages, and bad requests refused with a named
 * error.
 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPB from '@ipld/dag-pb'
import { exporter, recursive } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import { randomBytes } from '../../helpers/bytes.js'
import { tempDir } from '../../helpers/temp.js'
import { shoalJson, startDaemon, suiteContext, type TestDaemon } from '../../helpers/cli.js'
import { assertError, brokerStore, call, collect, gatewayOf, parseVerifiedCar } from './helpers.js'

const TEST = { timeout: 120_000 }
const KiB = 1024
/** Leaves of 256 KiB (the fixed-size chunker), so byte offsets map to known leaves. */
const LEAF = 256 * KiB

describe('the gateway of a daemon', () => {
  const ctx = suiteContext()
  let d: TestDaemon
  let gw: string
  let fileCid: string
  let dirCid: string
  const file = randomBytes(3 * 1024 * KiB, 19)
  const tree: Record<string, Buffer> = {
    'a.txt': Buffer.from('hello from the gateway\n'),
    'sub/b.bin': Buffer.from(randomBytes(600 * KiB, 20)),
    'sub/deeper/c.txt': Buffer.from('deep\n'),
    'sub/deeper/name with spaces & <html>.txt': Buffer.from('odd name\n'),
    'site/index.html': Buffer.from('<h1>home</h1>\n')
  }

  before(async () => {
    d = await startDaemon(ctx)
    gw = await gatewayOf(d.repo)
    const dir = await tempDir(ctx, 'shoal-gw-data-')
    await writeFile(join(dir, 'file.bin'), file)
    for (const [path, bytes] of Object.entries(tree)) {
      await mkdir(join(dir, 'tree', path, '..'), { recursive: true })
      await writeFile(join(dir, 'tree', path), bytes)
    }
    fileCid = (await shoalJson(d.repo, ['add', join(dir, 'file.bin'), '--to', '/file.bin', '--chunker', `size-${LEAF}`])).cid
    await shoalJson(d.repo, ['add', join(dir, 'tree'), '--to', '/tree', '--chunker', `size-${LEAF}`])
    dirCid = (await shoalJson(d.repo, ['stat', '/tree'])).cid
  })

  it('Helia\'s trustless-gateway broker fetches and verifies every block of a multi-block file; the exporter reads the original bytes back from them', TEST, async () => {
    const store = brokerStore(gw)
    const entry = await exporter(CID.parse(fileCid), store)
    assert.equal(entry.type, 'file')
    assert.deepEqual(await collect(entry.content()), Buffer.from(file))
    assert.equal(store.fetched.size, 1 + file.byteLength / LEAF, 'the root and every leaf, each fetched as one raw block and checked')
  })

  it('Helia\'s broker walks a nested directory: every file read back equals the original', TEST, async () => {
    const store = brokerStore(gw)
    const read: Record<string, Buffer> = {}
    for await (const entry of recursive(CID.parse(dirCid), store)) {
      const full = await exporter(entry.cid, store)
      if (full.type === 'file' || full.type === 'raw') read[entry.path.split('/').slice(1).join('/')] = await collect(full.content())
    }
    assert.deepEqual(Object.keys(read).sort(), Object.keys(tree).sort())
    for (const [path, bytes] of Object.entries(tree)) assert.deepEqual(read[path], bytes, path)
  })

  it('a raw block: the body hashes to the CID, with the spec\'s headers; the identity probe answers empty', TEST, async () => {
    const a = await call(`${gw}/ipfs/${fileCid}`, { headers: { accept: 'application/vnd.ipld.raw' } })
    assert.equal(a.status, 200)
    assert.equal(a.headers.get('content-type'), 'application/vnd.ipld.raw')
    assert.equal(a.headers.get('etag'), `"${fileCid}.raw"`)
    assert.equal(a.headers.get('cache-control'), 'public, max-age=29030400, immutable')
    assert.equal(a.headers.get('x-ipfs-path'), `/ipfs/${fileCid}`)
    assert.equal(a.headers.get('x-ipfs-roots'), fileCid)
    assert.match(a.headers.get('content-disposition') ?? '', /^attachment; filename="bafy.*\.bin"$/)
    const root = dagPB.decode(a.body)
    assert.equal(root.Links.length, file.byteLength / LEAF, 'the file root itself, not the file')
    // the same CID in base32upper (as some tools print it): the same block
    const upper = await call(`${gw}/ipfs/B${fileCid.slice(1).toUpperCase()}?format=raw`)
    assert.equal(upper.status, 200)
    assert.deepEqual(upper.body, a.body)
    const probe = await call(`${gw}/ipfs/bafkqaaa?format=raw`)
    assert.equal(probe.status, 200)
    assert.equal(probe.body.byteLength, 0)
    const carProbe = await parseVerifiedCar((await call(`${gw}/ipfs/bafkqaaa?format=car`)).body)
    assert.deepEqual(carProbe, { roots: ['bafkqaaa'], blocks: [] }, 'identity blocks are not written into CARs')
    const head = await call(`${gw}/ipfs/${fileCid}?format=raw`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(head.headers.get('content-length'), String(a.body.byteLength))
    assert.equal(head.body.byteLength, 0)
    const again = await call(`${gw}/ipfs/${fileCid}?format=raw`, { headers: { 'if-none-match': `"${fileCid}.raw"` } })
    assert.equal(again.status, 304)
  })

  it('a CAR of a directory: every block hash-checked, the directory as its root, the whole tree read back from it', TEST, async () => {
    const a = await call(`${gw}/ipfs/${dirCid}?format=car`)
    assert.equal(a.status, 200)
    assert.equal(a.headers.get('content-type'), 'application/vnd.ipld.car; version=1; order=dfs; dups=n')
    assert.match(a.headers.get('etag') ?? '', new RegExp(`^"${dirCid}\\.car\\.[0-9a-f]+"$`))
    const car = await parseVerifiedCar(a.body)
    assert.deepEqual(car.roots, [dirCid])
    assert.equal(car.blocks[0].cid.toString(), dirCid, 'depth-first: the root comes first')
    const keys = car.blocks.map(b => b.cid.toString())
    assert.equal(new Set(keys).size, keys.length, 'dups=n: each block once')
    const blocks = new Map(car.blocks.map(b => [b.cid.toString(), b.bytes]))
    const store = { async * get (cid: CID) { const bytes = blocks.get(cid.toString()); assert.ok(bytes !== undefined, `${cid.toString()} is in the CAR`); yield bytes } }
    let files = 0
    for await (const entry of recursive(CID.parse(dirCid), store)) {
      const full = await exporter(entry.cid, store)
      if (full.type !== 'file' && full.type !== 'raw') continue
      assert.deepEqual(await collect(full.content()), tree[entry.path.split('/').slice(1).join('/')])
      files++
    }
    assert.equal(files, Object.keys(tree).length)
    // the Accept header asks for the same thing
    const byAccept = await call(`${gw}/ipfs/${dirCid}`, { headers: { accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=n' } })
    assert.deepEqual(byAccept.body, a.body)
  })

  it('a CAR of a path holds the blocks that prove the path, then the file', TEST, async () => {
    const a = await call(`${gw}/ipfs/${dirCid}/sub/b.bin?format=car`)
    assert.equal(a.status, 200)
    const car = await parseVerifiedCar(a.body)
    assert.deepEqual(car.roots, [dirCid])
    const sub = (await call(`${gw}/ipfs/${dirCid}/sub?format=raw`))
    const subCid = dagPB.decode((await call(`${gw}/ipfs/${dirCid}?format=raw`)).body).Links.find(l => l.Name === 'sub')?.Hash.toString()
    const fileRoot = dagPB.decode(sub.body).Links.find(l => l.Name === 'b.bin')?.Hash
    assert.ok(subCid !== undefined && fileRoot !== undefined)
    const leaves = dagPB.decode((await call(`${gw}/ipfs/${fileRoot.toString()}?format=raw`)).body).Links.map(l => l.Hash.toString())
    assert.deepEqual(car.blocks.map(b => b.cid.toString()), [dirCid, subCid, fileRoot.toString(), ...leaves])
    assert.equal(a.headers.get('x-ipfs-roots'), [dirCid, subCid, fileRoot.toString()].join(','))
  })

  it('dag-scope=entity with entity-bytes gives the blocks of that range only; block and entity scopes', TEST, async () => {
    const root = dagPB.decode((await call(`${gw}/ipfs/${fileCid}?format=raw`)).body)
    const leaves = root.Links.map(l => l.Hash.toString())
    const carOf = async (query: string): Promise<string[]> => {
      const a = await call(`${gw}/ipfs/${fileCid}?format=car&${query}`)
      assert.equal(a.status, 200, `${query}: ${a.body.toString('utf8')}`)
      const car = await parseVerifiedCar(a.body)
      assert.deepEqual(car.roots, [fileCid])
      return car.blocks.map(b => b.cid.toString())
    }
    // bytes 300000..600000 lie in the second and third 256 KiB leaves
    assert.deepEqual(await carOf('dag-scope=entity&entity-bytes=300000:600000'), [fileCid, leaves[1], leaves[2]])
    assert.deepEqual(await carOf('entity-bytes=0:0'), [fileCid, leaves[0]], 'entity-bytes alone implies dag-scope=entity')
    assert.deepEqual(await carOf('entity-bytes=-100:*'), [fileCid, leaves[leaves.length - 1]], 'the last 100 bytes')
    assert.deepEqual(await carOf(`entity-bytes=${LEAF}:99999999`), [fileCid, ...leaves.slice(1)], 'a range running past the end is clamped')
    assert.deepEqual(await carOf('dag-scope=entity'), [fileCid, ...leaves], 'the whole file')
    assert.deepEqual(await carOf('dag-scope=block'), [fileCid])
    // a directory's entity is its own block; entity-bytes on it is ignored
    const dirEntity = await parseVerifiedCar((await call(`${gw}/ipfs/${dirCid}?format=car&dag-scope=entity&entity-bytes=0:10`)).body)
    assert.deepEqual(dirEntity.blocks.map(b => b.cid.toString()), [dirCid])
    // a range wholly outside the file is refused up front
    assertError(await call(`${gw}/ipfs/${fileCid}?format=car&entity-bytes=${file.byteLength}:*`), 400, 'InvalidArgumentError')
    // the Etag differs per scope and range
    const etags = new Set<string | null>()
    for (const q of ['dag-scope=all', 'dag-scope=block', 'entity-bytes=0:10', 'entity-bytes=0:11']) etags.add((await call(`${gw}/ipfs/${fileCid}?format=car&${q}`, { method: 'HEAD' })).headers.get('etag'))
    assert.equal(etags.size, 4)
  })

  it('the deserialized file, whole and by Range (206, Content-Range), 416 past the end, HEAD with its length', TEST, async () => {
    const whole = await call(`${gw}/ipfs/${fileCid}`)
    assert.equal(whole.status, 200)
    assert.deepEqual(whole.body, Buffer.from(file))
    assert.equal(whole.headers.get('accept-ranges'), 'bytes')
    assert.equal(whole.headers.get('etag'), `"${fileCid}"`)
    const cases: Array<[string, number, number]> = [
      ['bytes=100-199', 100, 199],
      [`bytes=${LEAF - 10}-${LEAF + 10}`, LEAF - 10, LEAF + 10],
      ['bytes=-10', file.byteLength - 10, file.byteLength - 1],
      [`bytes=${file.byteLength - 5}-`, file.byteLength - 5, file.byteLength - 1],
      [`bytes=10-${file.byteLength + 1000}`, 10, file.byteLength - 1]
    ]
    for (const [range, first, last] of cases) {
      const a = await call(`${gw}/ipfs/${fileCid}`, { headers: { range } })
      assert.equal(a.status, 206, range)
      assert.equal(a.headers.get('content-range'), `bytes ${first}-${last}/${file.byteLength}`, range)
      assert.deepEqual(a.body, Buffer.from(file.subarray(first, last + 1)), range)
    }
    const past = await call(`${gw}/ipfs/${fileCid}`, { headers: { range: `bytes=${file.byteLength}-` } })
    assertError(past, 416, 'RangeNotSatisfiableError')
    assert.equal(past.headers.get('content-range'), `bytes */${file.byteLength}`)
    const head = await call(`${gw}/ipfs/${fileCid}`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(head.headers.get('content-length'), String(file.byteLength))
    assert.equal(head.body.byteLength, 0)
    const text = await call(`${gw}/ipfs/${dirCid}/a.txt`)
    assert.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8')
    assert.deepEqual(text.body, tree['a.txt'])
  })

  it('a directory: redirected to its slash URL, then an HTML listing with escaped names; index.html is served when there is one', TEST, async () => {
    const redirect = await call(`${gw}/ipfs/${dirCid}/sub`)
    assert.equal(redirect.status, 301)
    assert.equal(redirect.headers.get('location'), `/ipfs/${dirCid}/sub/`)
    const listing = await call(`${gw}/ipfs/${dirCid}/sub/deeper/`)
    assert.equal(listing.status, 200)
    assert.match(listing.headers.get('content-type') ?? '', /^text\/html/)
    const html = listing.body.toString('utf8')
    assert.ok(html.includes('href="c.txt"'))
    assert.ok(html.includes('name with spaces &amp; &lt;html&gt;.txt'), 'the name is escaped')
    assert.ok(!html.includes('<html>.txt'))
    assert.ok(html.includes(`href="${encodeURIComponent('name with spaces & <html>.txt').replace(/&/g, '&amp;')}"`))
    const odd = await call(`${gw}/ipfs/${dirCid}/sub/deeper/${encodeURIComponent('name with spaces & <html>.txt')}`)
    assert.deepEqual(odd.body, tree['sub/deeper/name with spaces & <html>.txt'])
    const site = await call(`${gw}/ipfs/${dirCid}/site/`)
    assert.equal(site.status, 200)
    assert.match(site.headers.get('content-type') ?? '', /^text\/html/)
    assert.deepEqual(site.body, tree['site/index.html'])
  })

  it('bad requests get a clear error and change nothing: bad CID, bad or missing path, unknown format, POST, IPNS, unknown CID', TEST, async () => {
    assertError(await call(`${gw}/ipfs/not-a-cid`), 400, 'InvalidCIDError')
    // a codec that is not UnixFS (a libp2p-key, its identity hash inline): data, not a file; its one block as raw
    const key = 'k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8'
    assertError(await call(`${gw}/ipfs/${key}`), 406, 'NotAcceptableError')
    assert.equal((await call(`${gw}/ipfs/${key}`, { method: 'HEAD' })).status, 406)
    assert.equal((await call(`${gw}/ipfs/${key}?format=raw`)).status, 200)
    assertError(await call(`${gw}/ipfs/${key}?format=car`), 422, 'InvalidCARError')
    assertError(await call(`${gw}/ipfs/not-a-cid?format=raw`), 400, 'InvalidCIDError')
    assertError(await call(`${gw}/ipfs/${dirCid}/%zz`), 400, 'InvalidPathError')
    assertError(await call(`${gw}/ipfs/${dirCid}/sub//c.txt`), 400, 'InvalidPathError')
    assertError(await call(`${gw}/ipfs/${dirCid}/no-such-name`), 404, 'NotFoundError')
    // a long path is not echoed whole (a 12 KiB path made a 24 KB answer)
    const long = await call(`${gw}/ipfs/${dirCid}/${'n'.repeat(12 * 1024)}`)
    assertError(long, 404, 'NotFoundError')
    assert.ok(long.body.byteLength < 2048, `${long.body.byteLength} bytes answered`)
    assertError(await call(`${gw}/ipfs/${dirCid}/a.txt/below-a-file?format=car`), 404, 'NotFoundError')
    assertError(await call(`${gw}/ipfs/${fileCid}?format=tar`), 406, 'NotAcceptableError')
    assertError(await call(`${gw}/ipfs/${fileCid}?format=bogus`), 400, 'InvalidArgumentError')
    assertError(await call(`${gw}/ipfs/${fileCid}`, { headers: { accept: 'application/vnd.ipld.dag-json' } }), 406, 'NotAcceptableError')
    assertError(await call(`${gw}/ipfs/${fileCid}?format=car&car-dups=y`), 406, 'NotAcceptableError')
    assertError(await call(`${gw}/ipfs/${fileCid}?format=car&dag-scope=everything`), 400, 'InvalidArgumentError')
    assertError(await call(`${gw}/ipfs/${fileCid}?format=car&entity-bytes=ten:20`), 400, 'InvalidArgumentError')
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const a = await call(`${gw}/ipfs/${fileCid}`, { method, body: method === 'DELETE' ? undefined : 'x' })
      assertError(a, 405, 'MethodNotAllowedError')
      assert.equal(a.headers.get('allow'), 'GET, HEAD')
    }
    assertError(await call(`${gw}/ipns/example.com`), 404, 'NotFoundError')
    assertError(await call(`${gw}/api/v0/add`), 404, 'NotFoundError')
    // a CID nobody has: a bounded 404, not a hang
    const unknown = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    assertError(await call(`${gw}/ipfs/${unknown.toString()}?format=raw`), 404, 'BlockUnavailableError')
    assertError(await call(`${gw}/ipfs/${unknown.toString()}?format=car`), 404, 'BlockUnavailableError')
    // a page that reached the loopback gateway under another name (DNS rebinding) is refused
    const { request } = await import('node:http')
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gw}/ipfs/${fileCid}?format=raw`, { headers: { host: 'evil.example:80' }, timeout: 30_000 }, res => { res.resume(); resolve(res.statusCode ?? 0) })
      req.once('error', reject)
      req.end()
    })
    assert.equal(status, 403)
    // nothing of that changed what is served
    assert.deepEqual((await call(`${gw}/ipfs/${fileCid}`)).body, Buffer.from(file))
  })
})
