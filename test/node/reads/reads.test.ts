/**
 * The read path on real nodes (six Shoal nodes in one process: real libp2p
 * on 127.0.0.1, real LevelDB and packs in temp repos): a striped read is
 * served by several holders at once and leaves no copy behind, a stalled
 * holder is hedged by a rebuild, a holder that sends wrong bytes is caught
 * and never served, local copies that fail their check are fetched again or
 * rebuilt and replaced, and an aborted read leaves no fetch, request or
 * listener behind; a leaf its holder lost is rebuilt at once from the
 * leaves the read has, asking no peer that does not hold it, and a stripe
 * that lost two leaves is rebuilt once.
 *
 * Two faults cannot be made real between processes of one test and are
 * injected on the holder's side, below its exchange server: a disk that
 * stalls on one block, and a peer whose store returns wrong bytes.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as dagPb from '@ipld/dag-pb'
import { parseChunker, readContent } from '../../../node/content/index.js'
import { repoLayout } from '../../../node/repo/index.js'
import { loadManifestRoot, readStripes } from '../../../node/durability/stripes.js'
import { flipEveryBlock } from '../blocks/fixtures.js'
import { connectAll, live, once, readAll, sha, startNode, stopNode, swarmOf, until, type Swarm } from '../../helpers/swarm.js'
import type { CleanupContext } from '../../helpers/temp.js'
import { READ_CACHE_BYTES, type BlockOrigin } from '../../../node/reads/index.js'
import { HOLDINGS_WAIT_MS } from '../../../node/reads/striped.js'
import type { ShoalNode } from '../../../node/node.js'
import type { Stripe } from '../../../protocol/durability.js'
import { NotFoundError } from '../../../node/errors.js'
import { setTimeout as sleep } from 'node:timers/promises'

const TEST = { timeout: 120_000 }
const MiB = 1024 * 1024
/** Data shards per stripe of the test file's policy (`ec:4+2`). */
const K = 4

interface StripedFile { swarm: Swarm, writer: ShoalNode, reader: ShoalNode, readerIndex: number, data: Buffer, root: CID, manifest: CID, stripes: Stripe[] }

/**
 * Six nodes and a file of `size` (4 MiB: 16 leaves, 4 stripes) pinned ec:4+2
 * by node 0, which then drops what it does not hold; the last node that
 * holds a data shard of it reads (placement follows the peers' random ids:
 * a node may hold only parity shards of a small file).
 */
async function stripedFile (t: CleanupContext, size = 4 * MiB): Promise<StripedFile> {
  const swarm = await swarmOf(t, 6)
  const writer = swarm.nodes[0] as ShoalNode
  const data = randomBytes(size)
  await writer.components.files.add('/f.bin', once(data), { chunker: parseChunker('size-262144'), pin: `ec:${K}+2`, wait: true })
  await writer.components.durability.collectGarbage()
  const status = await writer.components.files.pinStatus('/f.bin')
  const holdsData = (node: ShoalNode): boolean => status.stripes.some(s => s.shards.slice(0, K).some(sh => sh.holders.includes(node.components.peerId)))
  const readerIndex = [5, 4, 3, 2, 1].find(i => holdsData(swarm.nodes[i] as ShoalNode))
  assert.ok(readerIndex !== undefined, 'some node other than the writer holds a data shard')
  const reader = swarm.nodes[readerIndex] as ShoalNode
  await until('the record on the reader', async () => (await reader.components.namespace.lookup('/f.bin')) !== undefined)
  const entry = await reader.components.namespace.stat('/f.bin')
  assert.ok(entry.type === 'file' && entry.pin?.manifest !== undefined)
  const manifest = CID.parse(entry.pin.manifest)
  const getter = reader.components.blocks.getter()
  const stripes: Stripe[] = []
  for await (const { index, stripe } of readStripes(getter, await loadManifestRoot(getter, manifest), undefined)) stripes[index] = stripe
  return { swarm, writer, reader, readerIndex, data, root: CID.parse(entry.cid), manifest, stripes }
}

/** A data leaf (of a stripe after the first) whose holder is neither the reader nor the writer, and that holder. */
async function leafOnAnother (f: StripedFile): Promise<{ leaf: CID, holder: ShoalNode }> {
  const status = await f.writer.components.files.pinStatus('/f.bin')
  for (let index = 1; index < f.stripes.length; index++) {
    for (let shard = 0; shard < f.stripes[index].data.length; shard++) {
      const peers = status.stripes[index].shards[shard].holders
      const holder = live(f.swarm).find(n => peers.includes(n.components.peerId) && n !== f.reader && n !== f.writer)
      if (holder !== undefined) return { leaf: f.stripes[index].data[shard], holder }
    }
  }
  throw new Error('no leaf held by a third node')
}

/** The data leaves the reader holds as its shards. */
async function ownLeaves (f: StripedFile): Promise<CID[]> {
  const status = await f.writer.components.files.pinStatus('/f.bin')
  return status.stripes.flatMap((s, i) => s.shards.slice(0, f.stripes[i].data.length).flatMap((sh, j) => sh.holders.includes(f.reader.components.peerId) ? [f.stripes[i].data[j]] : []))
}

/** The inner nodes (the root included) and raw leaves of the UnixFS DAG under `root`, from `node`'s store. */
async function dagOf (node: ShoalNode, root: CID): Promise<{ inner: CID[], leaves: CID[] }> {
  const inner: CID[] = []
  const leaves: CID[] = []
  const walk = async (cid: CID): Promise<void> => {
    if (cid.code === 0x55) { leaves.push(cid); return }
    inner.push(cid)
    for (const link of dagPb.decode(await node.components.blockstore.getBytes(cid)).Links) await walk(link.Hash)
  }
  await walk(root)
  return { inner, leaves }
}

/** Read the file on `node` through its block service, noting where every block came from. */
async function readNoting (f: StripedFile, node: ShoalNode, signal?: AbortSignal): Promise<{ bytes: Buffer, origins: Map<string, BlockOrigin> }> {
  const origins = new Map<string, BlockOrigin>()
  const session = node.components.blocks.session({ root: f.root, manifest: f.manifest }, { signal, onProgress: e => { origins.set(e.cid.toString(), e.from) } })
  const chunks: Uint8Array[] = []
  for await (const chunk of readContent(session, f.root, { signal })) chunks.push(chunk)
  return { bytes: Buffer.concat(chunks), origins }
}

/** What the nodes other than the reader were asked for (by node) and gave (by block) during a read. */
interface Serving { asked: Map<ShoalNode, string[]>, given: Map<string, number> }

/**
 * Watch what every node but the reader is asked for and gives, by block,
 * with each leaf of `lost` refused by its holder `ms` after it is asked (the
 * holder lost it, and says so only after a while).
 */
function watchServing (f: StripedFile, lost: Array<{ leaf: CID, holder: ShoalNode, ms: number }>, slow?: { blocks: CID[], ms: number }): Serving {
  const asked = new Map<ShoalNode, string[]>()
  const given = new Map<string, number>()
  for (const node of live(f.swarm).filter(n => n !== f.reader)) {
    const store = node.components.blockstore
    const getBytes = store.getBytes.bind(store)
    const mine: string[] = []
    asked.set(node, mine)
    store.getBytes = async (cid, options) => {
      mine.push(cid.toString())
      const gone = lost.find(l => l.holder === node && l.leaf.equals(cid))
      if (gone !== undefined) {
        await sleep(gone.ms)
        throw new NotFoundError(`${cid.toString()} is not here`)
      }
      if (slow?.blocks.some(b => b.equals(cid)) === true) await sleep(slow.ms)
      const bytes = await getBytes(cid, options)
      given.set(cid.toString(), (given.get(cid.toString()) ?? 0) + 1)
      return bytes
    }
  }
  return { asked, given }
}

/**
 * Each block of stripe `at` (rebuilt: `lost` are its lost leaves) was sent at
 * most once, and some were. Not every block of the file: on a loaded machine
 * a leaf of another stripe late past the hedge (over a second) starts a
 * rebuild of its own stripe, which may fetch a sibling leaf the read's window
 * fetches too, as a hedge accepts (seen in CI: stripe 3 leaf 2 sent twice,
 * the lost leaves in stripe 1). A failure names the block's place.
 */
function sentOnceIn (f: StripedFile, at: number, given: ReadonlyMap<string, number>, lost: CID[]): void {
  const role = (cid: string): string => {
    for (const [i, stripe] of f.stripes.entries()) {
      const d = stripe.data.findIndex(c => c.toString() === cid)
      if (d >= 0) return `stripe ${i} leaf ${d}${lost.some(l => l.toString() === cid) ? ', one of the lost' : ''}`
      const p = stripe.parity.findIndex(c => c.toString() === cid)
      if (p >= 0) return `stripe ${i} parity ${p}`
    }
    return 'not a shard'
  }
  const rebuilt = new Set([...f.stripes[at].data, ...f.stripes[at].parity].map(c => c.toString()))
  for (const [cid, n] of given) if (rebuilt.has(cid)) assert.ok(n <= 1, `block ${cid} (${role(cid)}; the stripe rebuilt is ${at}) sent ${n} times`)
  assert.ok([...rebuilt].some(cid => given.has(cid)), 'the rebuild fetched shards of the stripe')
}

function blocksSent (node: ShoalNode): number {
  return node.components.exchange.stats().blocksSent
}

describe('read path v2 on real nodes', () => {
  it('a healthy striped read is served by the holders of its shards, several at once, its own shards read here, with no rebuild', TEST, async t => {
    // 16 MiB: 16 stripes, more than the reader's own window, so the stripes ahead are fetched by the session
    const f = await stripedFile(t, 16 * MiB)
    const others = live(f.swarm).filter(n => n !== f.reader)
    const before = others.map(blocksSent)
    const { bytes, origins } = await readNoting(f, f.reader, AbortSignal.timeout(60_000))
    assert.equal(sha(bytes), sha(f.data))
    const from = [...origins.values()]
    assert.ok(from.includes('peer'), 'leaves came from peers')
    assert.ok(!from.includes('rebuilt') && !from.includes('cold'), `healthy: nothing rebuilt (${[...new Set(from)].join(',')})`)
    // every leaf was delivered once, and reported
    for (const stripe of f.stripes) for (const leaf of stripe.data) assert.ok(origins.has(leaf.toString()), `leaf ${leaf.toString()} reported`)
    // the reader's own shards never crossed the network; nothing else was kept
    const own = await ownLeaves(f)
    assert.ok(own.length > 0, 'the reader holds some data shards')
    for (const stripe of f.stripes) {
      for (const leaf of stripe.data) {
        if (!own.some(o => o.equals(leaf))) assert.equal(await f.reader.components.blockstore.has(leaf), false, 'a striped read leaves no copy behind')
      }
    }
    for (const leaf of own) assert.equal(origins.get(leaf.toString()), 'local', `own shard ${leaf.toString()} read here`)
    const served = others.filter((n, i) => blocksSent(n) > before[i])
    assert.ok(served.length >= 4, `at least k holders served the read (${served.length})`)
    const stats = f.reader.components.exchange.stats()
    assert.equal(stats.fetchesPending, 0)
    assert.equal(stats.requestsInFlight, 0)
  })

  it('a striped read looks up the providers of its manifest once, not once per manifest block', TEST, async t => {
    const f = await stripedFile(t)
    const mroot = await loadManifestRoot(f.reader.components.blocks.getter(), f.manifest)
    assert.ok(mroot.pages.length >= 1)
    // the reader holds none of the manifest: its blocks come from peers
    for (const cid of [f.manifest, ...mroot.pages]) await f.reader.components.blockstore.delete(cid)
    const routing = f.reader.components.libp2p.contentRouting
    const findProviders = routing.findProviders.bind(routing)
    const looked: string[] = []
    routing.findProviders = (cid, options) => { looked.push(cid.toString()); return findProviders(cid, options) }
    const { bytes } = await readNoting(f, f.reader, AbortSignal.timeout(60_000))
    assert.equal(sha(bytes), sha(f.data))
    // at most once: the connected holders say they have it, and the DHT is asked only when they do not
    assert.ok(looked.filter(c => c === f.manifest.toString()).length <= 1, 'the manifest root was looked up once at most')
    for (const page of mroot.pages) assert.ok(!looked.includes(page.toString()), 'a page is asked of the root\'s providers, not looked up')
    for (const cid of [f.manifest, ...mroot.pages]) assert.equal(await f.reader.components.blockstore.has(cid), true, 'the manifest is kept, as before')
  })

  it('a holder that stalls on a leaf is hedged: its stripe is rebuilt from the others while the request still hangs', TEST, async t => {
    const f = await stripedFile(t)
    const { leaf, holder: slow } = await leafOnAnother(f)
    // a disk that stalls on that one block: the holder's server never answers it
    let release: (() => void) | undefined
    let stalled = 0
    const store = slow.components.blockstore
    const getBytes = store.getBytes.bind(store)
    store.getBytes = async (cid, options) => {
      if (!cid.equals(leaf)) return await getBytes(cid, options)
      stalled++
      await new Promise<void>(resolve => { release = resolve })
      return await getBytes(cid, options)
    }
    t.after(() => { release?.() })
    const { bytes, origins } = await readNoting(f, f.reader, AbortSignal.timeout(60_000))
    assert.equal(sha(bytes), sha(f.data))
    assert.ok(stalled >= 1, 'the stalled holder was asked')
    assert.equal(origins.get(leaf.toString()), 'rebuilt', 'the stalled leaf was rebuilt')
    // without the hedge the read could only go on once that request failed (a 15 s timeout)
    assert.ok(f.reader.components.exchange.stats().requestsInFlight >= 1, 'the request to the stalled holder is still out when the read ends')
  })

  it('a leaf its holder cannot give is rebuilt from its stripe at once: only its holders are asked for it, and no leaf crosses the network twice', TEST, async t => {
    const f = await stripedFile(t, 8 * MiB)
    const { leaf, holder } = await leafOnAnother(f)
    // that holder lost the block, and says so only after a while: the stripe's other leaves have arrived by then
    const { asked, given } = watchServing(f, [{ leaf, holder, ms: 300 }])
    const { bytes, origins } = await readNoting(f, f.reader, AbortSignal.timeout(60_000))
    assert.equal(sha(bytes), sha(f.data))
    assert.equal(origins.get(leaf.toString()), 'rebuilt')
    // the leaf was asked of its holder only (no other node keeps a striped file's leaf: asking them is a wasted round trip each)
    const askedForIt = [...asked].filter(([, cids]) => cids.includes(leaf.toString())).map(([node]) => node)
    assert.deepEqual(askedForIt, [holder], 'only the leaf\'s holder was asked for it')
    assert.equal(asked.get(holder)?.filter(c => c === leaf.toString()).length, 1, 'and once: its answer sent the leaf to be rebuilt')
    // the rebuild took the stripe's leaves the read had fetched already
    for (const stripe of f.stripes) {
      for (const cid of stripe.data) assert.ok((given.get(cid.toString()) ?? 0) <= 1, `leaf ${cid.toString()} sent ${given.get(cid.toString()) ?? 0} times`)
    }
  })

  it('two leaves of one stripe lost at different moments are rebuilt once: no block of that stripe, parity included, is sent twice', TEST, async t => {
    const f = await stripedFile(t, 8 * MiB)
    const status = await f.writer.components.files.pinStatus('/f.bin')
    // a stripe past the first with two data leaves on nodes other than the reader
    let lost: Array<{ leaf: CID, holder: ShoalNode }> = []
    for (let index = 1; index < f.stripes.length && lost.length < 2; index++) {
      lost = []
      for (let shard = 0; shard < f.stripes[index].data.length && lost.length < 2; shard++) {
        const holder = live(f.swarm).find(n => n !== f.reader && status.stripes[index].shards[shard].holders.includes(n.components.peerId))
        if (holder !== undefined) lost.push({ leaf: f.stripes[index].data[shard], holder })
      }
    }
    assert.equal(lost.length, 2, 'a stripe with two leaves held by other nodes')
    // the first leaf's holder says it lost it after 300 ms, the second's after 900 ms: the stripe is rebuilt in between
    const { given } = watchServing(f, lost.map((l, i) => ({ ...l, ms: i === 0 ? 300 : 900 })))
    const { bytes, origins } = await readNoting(f, f.reader, AbortSignal.timeout(60_000))
    assert.equal(sha(bytes), sha(f.data))
    for (const { leaf } of lost) assert.equal(origins.get(leaf.toString()), 'rebuilt')
    const lostAt = f.stripes.findIndex(s => s.data.some(c => c.equals(lost[0].leaf)))
    sentOnceIn(f, lostAt, given, lost.map(l => l.leaf))
  })

  it('a second leaf of a stripe lost while the first one\'s rebuild still waits for its parity: the parity is fetched once', TEST, async t => {
    const f = await stripedFile(t, 8 * MiB)
    const status = await f.writer.components.files.pinStatus('/f.bin')
    let lost: Array<{ leaf: CID, holder: ShoalNode }> = []
    let at = -1
    for (let index = 1; index < f.stripes.length && lost.length < 2; index++) {
      lost = []
      at = index
      for (let shard = 0; shard < f.stripes[index].data.length && lost.length < 2; shard++) {
        const holder = live(f.swarm).find(n => n !== f.reader && status.stripes[index].shards[shard].holders.includes(n.components.peerId))
        if (holder !== undefined) lost.push({ leaf: f.stripes[index].data[shard], holder })
      }
    }
    assert.equal(lost.length, 2, 'a stripe with two leaves held by other nodes')
    // the first leaf is refused after 300 ms, the second after 900 ms; the stripe's parity takes 1.5 s to read
    // (a loaded machine): the second leaf fails while the first one's rebuild still waits for the parity
    const { given } = watchServing(f, lost.map((l, i) => ({ ...l, ms: i === 0 ? 300 : 900 })), { blocks: f.stripes[at].parity, ms: 1500 })
    const { bytes, origins } = await readNoting(f, f.reader, AbortSignal.timeout(60_000))
    assert.equal(sha(bytes), sha(f.data))
    for (const { leaf } of lost) assert.equal(origins.get(leaf.toString()), 'rebuilt')
    for (const p of f.stripes[at].parity) assert.ok((given.get(p.toString()) ?? 0) <= 1, `parity ${p.toString()} sent ${given.get(p.toString()) ?? 0} times`)
  })

  it('a stripe rebuilt again once a holder that answered the read\'s view late is known fetches only what it lacked: no shard of it is sent twice', TEST, async t => {
    const f = await stripedFile(t, 8 * MiB)
    const status = await f.writer.components.files.pinStatus('/f.bin')
    const ownersOf = (index: number, shard: number): ShoalNode[] => live(f.swarm).filter(n => status.stripes[index].shards[shard].holders.includes(n.components.peerId))
    // a stripe past the first with its six shards on six nodes: two data leaves lost (their holders refuse them at
    // once), a third shard on a node whose answer to the read's view comes late; the stripe needs all four others
    let pick: { index: number, lost: Array<{ leaf: CID, holder: ShoalNode }>, slow: ShoalNode } | undefined
    for (let index = 1; index < f.stripes.length && pick === undefined; index++) {
      const owners = Array.from({ length: K + 2 }, (_, s) => ownersOf(index, s))
      if (owners.some(o => o.length !== 1) || new Set(owners.map(o => o[0])).size !== K + 2) continue
      const others = [...owners.keys()].filter(s => owners[s][0] !== f.reader)
      const lostShards = others.filter(s => s < K).slice(0, 2)
      const slowShard = others.find(s => !lostShards.includes(s))
      if (lostShards.length < 2 || slowShard === undefined) continue
      pick = { index, lost: lostShards.map(s => ({ leaf: f.stripes[index].data[s], holder: owners[s][0] })), slow: owners[slowShard][0] }
    }
    assert.ok(pick !== undefined, 'a stripe with its shards on six nodes')
    const { given } = watchServing(f, pick.lost.map(l => ({ ...l, ms: 0 })))
    // the slow node says which shards it holds after the read's first wait for its view, within the wait of the second
    const holdings = pick.slow.components.holdings
    const held = holdings.held.bind(holdings)
    holdings.held = async function * (...args: Parameters<typeof held>) {
      await sleep(HOLDINGS_WAIT_MS + 2_000)
      yield * held(...args)
    }
    const { bytes, origins } = await readNoting(f, f.reader, AbortSignal.timeout(90_000))
    assert.equal(sha(bytes), sha(f.data))
    for (const { leaf } of pick.lost) assert.equal(origins.get(leaf.toString()), 'rebuilt')
    sentOnceIn(f, pick.index, given, pick.lost.map(l => l.leaf))
  })

  it('a holder that sends wrong bytes is caught, scored down and hung up on; its leaves are rebuilt and never served', TEST, async t => {
    const f = await stripedFile(t)
    const { leaf, holder: liar } = await leafOnAnother(f)
    // a peer whose store answers with wrong bytes (its server sends what its store gives)
    const store = liar.components.blockstore
    const getBytes = store.getBytes.bind(store)
    store.getBytes = async (cid, options) => {
      const bytes = await getBytes(cid, options)
      if (!cid.equals(leaf)) return bytes
      const wrong = Uint8Array.from(bytes)
      wrong[0] ^= 0xff
      return wrong
    }
    const { bytes, origins } = await readNoting(f, f.reader, AbortSignal.timeout(60_000))
    assert.equal(sha(bytes), sha(f.data), 'byte-identical: the wrong bytes were never served')
    assert.equal(origins.get(leaf.toString()), 'rebuilt')
    assert.ok(f.reader.components.exchange.stats().corruptBlocks >= 1)
    assert.ok(f.reader.components.exchange.stats().peersDisconnected >= 1, 'the liar was hung up on')
    // and the reader stored nothing of it (a striped read keeps no copy)
    assert.equal(await f.reader.components.blockstore.has(leaf), false)
  })

  it('local copies that fail their check are never served: fetched again or rebuilt, and replaced', TEST, async t => {
    const f = await stripedFile(t)
    // a plain file only the writer holds: a read keeps its blocks here (a cache)
    const plain = randomBytes(2 * MiB)
    await f.writer.components.files.add('/plain.bin', once(plain), { chunker: parseChunker('size-262144'), pin: 'none' })
    await until('the plain file on the reader', async () => (await f.reader.components.namespace.lookup('/plain.bin')) !== undefined)
    assert.equal(sha(await readAll(f.reader, '/plain.bin')), sha(plain))
    assert.equal(sha(await readAll(f.reader, '/f.bin')), sha(f.data))
    const own = await ownLeaves(f)
    assert.ok(own.length > 0, 'the reader holds some data shards')
    // every block the reader stores (the plain file's cached blocks, its own shards) gets a flipped byte on disk
    await stopNode(f.swarm, f.readerIndex)
    const flipped = await flipEveryBlock(repoLayout(f.swarm.repos[f.readerIndex]).blocks)
    assert.ok(flipped >= 8 + own.length, `flipped ${flipped} blocks`)
    const reader = await startNode(f.swarm.repos[f.readerIndex])
    f.swarm.nodes[f.readerIndex] = reader
    f.reader = reader
    await connectAll(live(f.swarm))
    await until('the reader sees its peers', async () => reader.components.libp2p.getPeers().length >= 5)
    assert.equal(sha(await readAll(reader, '/plain.bin')), sha(plain), 'never served corrupt')
    assert.equal(sha(await readAll(reader, '/f.bin')), sha(f.data), 'never served corrupt')
    const after = reader.components.exchange.stats()
    assert.ok(after.corruptLocal >= 8 + own.length, `corrupt local copies were noticed (${after.corruptLocal})`)
    assert.ok(after.replacedLocal >= 8, 'the cached blocks were replaced by good ones from the writer')
    // its own shards (no other node has them) were rebuilt from their stripes and stored again
    for (const leaf of own) await reader.components.blockstore.getBytes(leaf)
    // the next reads find every block they need good here
    assert.equal(sha(await readAll(reader, '/plain.bin')), sha(plain))
    assert.equal(sha(await readAll(reader, '/f.bin')), sha(f.data))
    const again = reader.components.exchange.stats()
    assert.equal(again.corruptLocal, after.corruptLocal)
  })

  it('a pin that re-codes a striped file on a node holding none of it keeps every leaf it reads, then places the new stripes', TEST, async t => {
    const f = await stripedFile(t)
    const coder = live(f.swarm).find(n => n !== f.writer && n !== f.reader) as ShoalNode
    await until('the record on that node', async () => (await coder.components.namespace.lookup('/f.bin')) !== undefined)
    const pinned = await coder.components.files.pinAdd('/f.bin', { policy: 'ec:2+1' })
    assert.equal(pinned.policy, 'ec:2+1')
    for (const stripe of f.stripes) {
      for (const leaf of stripe.data) assert.equal(await coder.components.blockstore.has(leaf), true, `leaf ${leaf.toString()} kept for the new coding`)
    }
    const status = await coder.components.files.pinStatus('/f.bin')
    assert.ok(status.manifest !== undefined && status.manifest !== f.manifest.toString(), 'a new manifest')
    assert.equal(status.summary.lost, 0)
    assert.equal(sha(await readAll(f.reader, '/f.bin')), sha(f.data))
  })

  it('an aborted read leaves no fetch, request or abort listener behind', TEST, async t => {
    const f = await stripedFile(t)
    const controller = new AbortController()
    const session = f.reader.components.blocks.session({ root: f.root, manifest: f.manifest }, { signal: controller.signal })
    let got = 0
    await assert.rejects((async () => {
      for await (const chunk of readContent(session, f.root, { signal: controller.signal })) {
        got += chunk.byteLength
        if (got >= MiB) controller.abort()
      }
    })(), (err: any) => err.name === 'AbortedError' || err.name === 'AbortError')
    assert.ok(got >= MiB && got < f.data.byteLength)
    await until('every fetch ended', async () => {
      const s = f.reader.components.exchange.stats()
      return s.fetchesPending === 0 && s.requestsInFlight === 0
    }, 20_000)
    // a read that ends early (the consumer stops) on a signal that lives on: its listeners are gone
    const lasting = new AbortController()
    const listening = getEventListeners(lasting.signal, 'abort').length
    const early = f.reader.components.blocks.session({ root: f.root, manifest: f.manifest }, { signal: lasting.signal })
    let waiting = 0
    let read = 0
    for await (const chunk of readContent(early, f.root, { signal: lasting.signal })) {
      read += chunk.byteLength
      // leaves read ahead wait on the signal; when the ones after this chunk have all arrived already (fast holders), stop at a later chunk
      waiting = getEventListeners(lasting.signal, 'abort').length - listening
      if (waiting > 0 || read >= f.data.byteLength / 2) break
    }
    assert.ok(waiting > 0, 'the early read had fetches waiting on its signal')
    assert.ok(read < f.data.byteLength, 'the read ended early')
    // the leaves it fetched ahead finish or time out; then nothing waits on the signal
    await until('the early read settled, with no abort listener left on its signal', async () => {
      const s = f.reader.components.exchange.stats()
      return s.fetchesPending === 0 && s.requestsInFlight === 0 && getEventListeners(lasting.signal, 'abort').length === listening
    }, 20_000)
    // the file still reads whole after both
    assert.equal(sha(await readAll(f.reader, '/f.bin')), sha(f.data))
  })

  it('a read of a plain DAG keeps its inner nodes and at most READ_CACHE_BYTES of its leaves; a read that keeps, all of them', TEST, async t => {
    const swarm = await swarmOf(t, 2)
    const [writer, reader] = swarm.nodes as ShoalNode[]
    const data = randomBytes(READ_CACHE_BYTES + 4 * MiB)
    const { cid } = await writer.components.files.add('/big.bin', once(data), { chunker: parseChunker('size-262144'), pin: 'none' })
    const root = CID.parse(cid)
    const { inner, leaves } = await dagOf(writer, root)
    assert.ok(inner.length > 1, 'a DAG with inner nodes below the root')
    const read = async (keep: boolean): Promise<void> => {
      const session = reader.components.blocks.session({ root }, { keep, signal: AbortSignal.timeout(60_000) })
      const chunks: Uint8Array[] = []
      for await (const chunk of readContent(session, root)) chunks.push(chunk)
      assert.equal(sha(Buffer.concat(chunks)), sha(data))
    }
    await read(false)
    const held = async (cids: CID[]): Promise<CID[]> => {
      const here: CID[] = []
      for (const c of cids) if (await reader.components.blockstore.has(c)) here.push(c)
      return here
    }
    assert.equal((await held(inner)).length, inner.length, 'every inner node is kept')
    const kept = await held(leaves)
    // every leaf is 256 KiB: the budget holds a whole number of them
    assert.equal(kept.length * 256 * 1024, READ_CACHE_BYTES, `${kept.length} of ${leaves.length} leaves kept`)
    await read(true)
    assert.equal((await held(leaves)).length, leaves.length, 'a read that keeps stores every leaf')
  })
})
