/**
 * A holder whose holdings store was damaged, recovered as the daemon says
 * (move the folder aside, start again), on four real daemons of one private
 * swarm (libp2p on 127.0.0.1, LevelDB and packs in temp repos) with an
 * `ec:2+1` file. The shards the holder has in its block store are good:
 * they are found again and held, a `gc` run at once keeps them, and no
 * repair is needed. Before, the node started with an empty holdings store,
 * answered `holdings` without its shards and the `gc` deleted them as
 * unpinned garbage: the swarm lost a shard per stripe held there until
 * repair rebuilt it elsewhere (k shards of traffic each).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, readdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '../helpers/temp.js'
import { eventually, initSwarm, lines, runShoal, shoalJson, shoalOk, startDaemon, type TestDaemon } from '../helpers/cli.js'

const TEST = { timeout: 180_000 }

interface PinStatusJson {
  state: string
  stripes: Array<{ index: number, state: string, shards: Array<{ index: number, cid?: string, holders: string[] }> }>
}

/** A listen address of `d` with its peer id. */
async function addressOf (d: TestDaemon): Promise<string> {
  const id = await shoalJson<{ addresses: string[] }>(d.repo, ['id'])
  assert.ok(id.addresses.length > 0, 'the daemon listens somewhere')
  return id.addresses[0]
}

async function peerCount (d: TestDaemon): Promise<number> {
  return (await shoalJson<unknown[]>(d.repo, ['peers', 'ls'])).length
}

/** Flip every 7th byte from byte 10 on of each LevelDB MANIFEST file of `dir`. */
async function rotManifest (dir: string): Promise<number> {
  let files = 0
  for (const name of await readdir(dir)) {
    if (!name.startsWith('MANIFEST-')) continue
    const bytes = await readFile(join(dir, name))
    for (let i = 10; i < bytes.length; i += 7) bytes[i] ^= 0xff
    await writeFile(join(dir, name), bytes)
    files++
  }
  return files
}

/** `stripe:shard` of every shard of `status` that `peer` holds. */
function heldBy (status: PinStatusJson, peer: string): string[] {
  const out: string[] = []
  for (const s of status.stripes) for (const sh of s.shards) if (sh.holders.includes(peer)) out.push(`${s.index}:${sh.index}`)
  return out
}

describe('a holdings store moved aside as the damaged-store line says', () => {
  it('the shards still in the block store are held again; gc keeps them and repair rebuilds nothing', TEST, async (t) => {
    const dir = await tempDir(t, 'shoal-holdings-recovery-')
    const repos = await initSwarm(dir, ['a', 'b', 'c', 'd'])
    // repair passes only when the test asks: what it sees is the recovery, not a rebuild racing it
    for (const repo of repos) await shoalOk(repo, ['config', 'set', 'durability.checkInterval', '0'])
    const daemons = await Promise.all(repos.map(async r => await startDaemon(t, r)))
    const addresses = await Promise.all(daemons.map(addressOf))
    for (let i = 1; i < daemons.length; i++) {
      for (let j = 0; j < i; j++) await shoalOk(daemons[i].repo, ['peers', 'connect', addresses[j]])
    }
    await eventually('every daemon connected to the three others', async () => {
      for (const d of daemons) if (await peerCount(d) < 3) return false
      return true
    })
    const ids = await Promise.all(daemons.map(async d => (await shoalJson<{ id: string }>(d.repo, ['id'])).id))
    const [a] = daemons

    // 4 leaves of 256 KiB: 2 stripes of ec:2+1, on 3 of the 4 nodes each
    const data = randomBytes(1024 * 1024)
    const file = join(dir, 'f.bin')
    await writeFile(file, data)
    await shoalOk(a.repo, ['add', file, '--to', '/f.bin', '--chunker', 'size-262144', '--pin', 'ec:2+1', '--wait'])
    await eventually('the file on every node', async () => {
      for (const d of daemons) if ((await runShoal(['--repo', d.repo, 'stat', '/f.bin'])).code !== 0) return false
      return true
    })
    // every node keeps only what it holds (the writer drops the shards it placed elsewhere)
    for (const d of daemons) await shoalOk(d.repo, ['gc'])
    const placed = await shoalJson<PinStatusJson>(a.repo, ['pin', 'status', '/f.bin'])
    assert.equal(placed.state, 'healthy')
    // a holder other than the writer
    const h = ids.findIndex((id, i) => i > 0 && heldBy(placed, id).length > 0)
    assert.ok(h > 0, 'a node other than the writer holds shards')
    const held = heldBy(placed, ids[h])

    // its holdings store is damaged while it is stopped: the start stops with one line that says what to do
    assert.equal((await daemons[h].stop()).code, 0)
    const store = join(repos[h], 'durability')
    assert.ok(await rotManifest(store) > 0)
    const refused = await runShoal(['--repo', repos[h], 'daemon'], { env: { SHOAL_LOG_LEVEL: 'warn' }, timeoutMs: 60_000 })
    assert.notEqual(refused.code, 0)
    const said = lines(refused.stderr).filter(l => l.startsWith('shoal: '))
    assert.equal(said.length, 1, refused.stderr)
    assert.match(said[0], /^shoal: the holdings store .*durability is damaged \(.*\): move it aside with `mv .*durability .*durability\.damaged` and start the daemon again: the shards it held that its block store still has are found again .* \(StoreDamagedError\)$/)

    // the command it gives, then a gc at once
    await rename(store, `${store}.damaged`)
    daemons[h] = await startDaemon(t, repos[h])
    // its block store holds its shards and the file's skeleton and manifest, nothing else: nothing to remove
    const gc = await shoalJson<{ removed: number }>(daemons[h].repo, ['gc'])
    assert.equal(gc.removed, 0, 'the gc right after the start removes no shard')
    await eventually('the recovered node connected to the three others', async () => await peerCount(daemons[h]) === 3)

    // its shards are held there again, as before the damage: nothing to rebuild
    await eventually('the recovered node holds its shards again', async () => {
      const now = await shoalJson<PinStatusJson>(a.repo, ['pin', 'status', '/f.bin'])
      return heldBy(now, ids[h]).join() === held.join()
    }, 30_000)
    let repaired = 0
    for (const d of daemons) repaired += (await shoalJson<{ repaired: number }>(d.repo, ['repair', '--wait'])).repaired
    assert.equal(repaired, 0, 'no shard rebuilt')
    // a gc once its holds are known again keeps them too
    const later = await shoalJson<{ removed: number, keptRecovering: number }>(daemons[h].repo, ['gc'])
    assert.deepEqual([later.removed, later.keptRecovering], [0, 0], 'the recovery has ended, and nothing is garbage')
    const after = await shoalJson<PinStatusJson>(a.repo, ['pin', 'status', '/f.bin'])
    assert.equal(after.state, 'healthy')
    assert.deepEqual(heldBy(after, ids[h]), held)
    assert.equal(Buffer.compare(await shoalOk(daemons[h].repo, ['cat', '/f.bin']), data), 0, 'the file reads back on the recovered node')
  })
})
