/**
 * Several daemons, each in its own process and repo, driven only through the
 * CLI: a private swarm forms, foreign nodes are refused, peers come back
 * after a restart.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { tempDir } from '../helpers/temp.js'
import { lines, runShoal, shoalJson, shoalOk, sleep, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'

const TEST = { timeout: 60_000 }

/** `init` a repo on loopback: in the swarm of `swarm` (a key file), or open, or (undefined) in a new private swarm. */
async function initRepo (dir: string, name: string, swarm?: string | { open: true }): Promise<string> {
  const repo = join(dir, name)
  const args = ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0']
  if (typeof swarm === 'string') args.push('--swarm-key', swarm)
  else if (swarm !== undefined) args.push('--open')
  await shoalOk(repo, args)
  return repo
}

async function addressOf (d: TestDaemon): Promise<string> {
  const id = await shoalJson(d.repo, ['id'])
  assert.ok(id.addresses.length > 0, 'the daemon listens somewhere')
  return id.addresses[0]
}

async function peerIds (d: TestDaemon): Promise<string[]> {
  return (await shoalJson<Array<{ id: string }>>(d.repo, ['peers', 'ls'])).map(p => p.id).sort()
}

/** Poll `fn` until it returns true or `ms` pass. */
async function eventually (fn: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await fn()) return true
    await sleep(200)
  }
  return false
}

async function failsOneLine (repo: string, args: string[], match: RegExp): Promise<void> {
  const r = await runShoal(['--repo', repo, ...args])
  assert.notEqual(r.code, 0, `${args.join(' ')} should fail`)
  assert.equal(lines(r.stderr).length, 1, `one line on stderr, got: ${r.stderr}`)
  assert.match(r.stderr, match)
}

describe('a private swarm driven through the CLI', () => {
  const ctx = suiteContext()
  let a: TestDaemon, b: TestDaemon, c: TestDaemon, foreign: TestDaemon, open: TestDaemon
  let aAddr: string
  let aId: string

  before(async () => {
    const dir = await tempDir(ctx, 'shoal-swarm-')
    const key = (await shoalOk(dir, ['swarm', 'key', 'new'])).toString()
    assert.match(key, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    const other = (await shoalOk(dir, ['swarm', 'key', 'new'])).toString()
    assert.notEqual(key, other)
    await writeFile(join(dir, 'swarm.key'), key)
    await writeFile(join(dir, 'other.key'), other)
    const repos = await Promise.all([
      initRepo(dir, 'a', join(dir, 'swarm.key')),
      initRepo(dir, 'b', join(dir, 'swarm.key')),
      initRepo(dir, 'c', join(dir, 'swarm.key')),
      initRepo(dir, 'foreign', join(dir, 'other.key')),
      initRepo(dir, 'open', { open: true })
    ])
    ;[a, b, c, foreign, open] = await Promise.all(repos.map(async r => await startDaemon(ctx, r)))
    aAddr = await addressOf(a)
    aId = (await shoalJson(a.repo, ['id'])).id
  })
  after(async () => {})

  it('status tells a private swarm from an open one', TEST, async () => {
    assert.equal((await shoalJson(a.repo, ['status'])).swarm, 'private')
    assert.equal((await shoalJson(open.repo, ['status'])).swarm, 'open')
    assert.match((await shoalOk(open.repo, ['status'])).toString(), /open/)
  })

  it('members with the same key connect; ls shows id, direction, latency, addresses', TEST, async () => {
    const joined = await shoalJson(b.repo, ['peers', 'connect', aAddr])
    assert.equal(joined.id, aId)
    await shoalOk(c.repo, ['peers', 'connect', aAddr])
    const onA = await shoalJson<Array<{ id: string, direction: string, latencyMs?: number, addresses: string[] }>>(a.repo, ['peers', 'ls'])
    const ids = onA.map(p => p.id).sort()
    const expected = [(await shoalJson(b.repo, ['id'])).id, (await shoalJson(c.repo, ['id'])).id].sort()
    assert.deepEqual(ids, expected)
    for (const p of onA) {
      assert.equal(p.direction, 'inbound')
      assert.ok(p.addresses.length > 0)
      assert.equal(typeof p.latencyMs, 'number')
    }
    const onB = await shoalJson<Array<{ id: string, direction: string }>>(b.repo, ['peers', 'ls'])
    assert.equal(onB.find(p => p.id === aId)?.direction, 'outbound')
  })

  it('a node with another key, or with none, is refused and does not join', TEST, async () => {
    const before = await peerIds(a)
    await failsOneLine(foreign.repo, ['peers', 'connect', aAddr], /PeerUnreachableError/)
    await failsOneLine(open.repo, ['peers', 'connect', aAddr], /PeerUnreachableError/)
    assert.deepEqual(await peerIds(foreign), [])
    assert.deepEqual(await peerIds(a), before)
  })

  it('bad peer arguments get a one-line error and change nothing', TEST, async () => {
    const before = await peerIds(b)
    await failsOneLine(b.repo, ['peers', 'connect', 'not-a-multiaddr'], /InvalidArgumentError/)
    await failsOneLine(b.repo, ['peers', 'connect', '/ip4/127.0.0.1/tcp/1'], /no \/p2p\//)
    await failsOneLine(b.repo, ['peers', 'disconnect', 'garbage'], /InvalidArgumentError/)
    await failsOneLine(b.repo, ['peers', 'forget', 'garbage'], /InvalidArgumentError/)
    // a live member is not forgotten: it is connected
    await failsOneLine(b.repo, ['peers', 'forget', aId], /PeerConnectedError/)
    const status = await shoalJson<{ namespace: { forgotten: unknown[] } }>(b.repo, ['status'])
    assert.deepEqual(status.namespace.forgotten, [])
    assert.deepEqual(await peerIds(b), before)
  })

  it('a file added on one member is read byte-identical on another, whole and in ranges', TEST, async () => {
    const dir = await tempDir(ctx, 'shoal-swarm-data-')
    const file = join(dir, 'shared.bin')
    const bytes = randomBytes(6 * 1024 * 1024 + 17)
    await writeFile(file, bytes)
    const added = await shoalJson(a.repo, ['add', file, '--to', '/shared.bin'])
    // c is connected to a only through the swarm (b and c joined a); it holds at most some shards
    // its CAR export fetches what it lacks, as cat does; the CAR alone rebuilds the file elsewhere
    const car = join(dir, 'shared.car')
    await shoalOk(c.repo, ['car', 'export', added.cid, '-o', car])
    await shoalOk(open.repo, ['car', 'import', car])
    assert.equal(Buffer.compare(await shoalOk(open.repo, ['cat', added.cid]), bytes), 0, 'the CAR holds the whole DAG (read on a node of another swarm)')
    const got = await shoalOk(c.repo, ['cat', added.cid])
    assert.equal(Buffer.compare(got, bytes), 0, 'byte-identical on c')
    const range = await shoalOk(b.repo, ['cat', added.cid, '--offset', '3000000', '--length', '4096'])
    assert.equal(Buffer.compare(range, bytes.subarray(3_000_000, 3_004_096)), 0, 'range on b')
    const out = join(dir, 'copy.bin')
    await shoalOk(b.repo, ['get', added.cid, '-o', out])
    assert.equal(Buffer.compare(await readFile(out), bytes), 0, 'get on b')
    // a node outside the swarm cannot read it
    await failsOneLine(foreign.repo, ['cat', added.cid], /not found/)
  })

  it('a restarted node re-dials the peers it knew; disconnect forgets a peer', TEST, async () => {
    assert.ok((await peerIds(c)).includes(aId))
    await c.stop('SIGTERM')
    const again = await startDaemon(ctx, c.repo)
    assert.ok(await eventually(async () => (await peerIds(again)).includes(aId), 20_000), 'c re-dialled a after its restart')
    const known = async (): Promise<string[]> => JSON.parse(await readFile(join(again.repo, 'peers.json'), 'utf8')).peers.map((p: { id: string }) => p.id)
    assert.ok((await known()).includes(aId))
    await shoalOk(again.repo, ['peers', 'disconnect', aId])
    // forgotten: never re-dialled by this node (the DHT of either side may still connect)
    assert.ok(await eventually(async () => !(await known()).includes(aId), 5_000), 'a is no longer a known peer of c')
    // a still knows c and dials it again within seconds: c accepts the connection but does not remember a
    assert.ok(await eventually(async () => (await peerIds(again)).includes(aId), 20_000), 'a dialled c again')
    await sleep(1_000)
    assert.ok(!(await known()).includes(aId), 'a stays forgotten by c after it dialled c again')
    c = again
  })
})
