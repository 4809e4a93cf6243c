/**
 * Pins through the CLI. On one daemon: `add --pin`, the default policy,
 * `pin ls|status|add|rm`, `repair [--scrub] --wait`, `gc`, and bad input (one line
 * on stderr, non-zero exit, nothing changed). On three daemons of one swarm:
 * each stripe's state in `pin status`.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes, assertBytesEqual } from '../helpers/bytes.js'
import { tempDir } from '../helpers/temp.js'
import { eventually, initSwarm, lines, runShoal, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'

const TEST = { timeout: 120_000 }

describe('pins through the CLI', () => {
  it('add pins by size, pin commands report and change policies, bad input changes nothing', TEST, async t => {
    const d = await startDaemon(t)
    const dir = await tempDir(t)
    const big = randomBytes(3 * 1024 * 1024, 7)
    const small = randomBytes(5000, 8)
    await writeFile(join(dir, 'big.bin'), big)
    await writeFile(join(dir, 'small.bin'), small)

    // the add succeeds (the file is durable here), and says in one line on stderr that its policy is not met yet
    const addedBig = await runShoal(['--repo', d.repo, 'add', join(dir, 'big.bin')])
    assert.equal(addedBig.code, 0, addedBig.stderr)
    assert.match(addedBig.stdout.toString(), /^added \S+ \/big\.bin\n$/, 'stdout keeps its one line for scripts')
    assert.deepEqual(lines(addedBig.stderr), ['shoal: note: /big.bin does not meet its policy yet: 1 live node, ec:4+2 needs 3 for its parity to survive a lost node; it is coded and placed once they are live (`shoal pin status /big.bin`)'])
    const addedSmall = await runShoal(['--repo', d.repo, '--json', 'add', join(dir, 'small.bin'), '--pin', 'ec:2+1'])
    assert.equal(addedSmall.code, 0, addedSmall.stderr)
    assert.deepEqual(Object.keys(JSON.parse(addedSmall.stdout.toString())).sort(), ['cid', 'path', 'size'], '--json on stdout is the contract\'s, unchanged')
    assert.deepEqual(JSON.parse(addedSmall.stderr), { note: { path: '/small.bin', pending: '1 live node, ec:2+1 needs 3 for its parity to survive a lost node; it is coded and placed once they are live', files: 1 } }, 'with --json the note is JSON on stderr')
    const unpinned = await runShoal(['--repo', d.repo, 'add', join(dir, 'small.bin'), '--to', '/plain.bin', '--pin', 'none'])
    assert.deepEqual([unpinned.code, unpinned.stderr], [0, ''], 'no policy, no note')
    await shoalOk(d.repo, ['rm', '/plain.bin'])
    const pins = await shoalJson<Array<{ path: string, policy: string, manifest?: string }>>(d.repo, ['pin', 'ls'])
    assert.deepEqual(pins.map(p => [p.path, p.policy]).sort(), [['/big.bin', 'ec:4+2'], ['/small.bin', 'ec:2+1']], 'default ec:4+2 for 1 MiB and more; --pin wins')
    assert.ok(pins.every(p => p.manifest === undefined), 'a lone node codes nothing: no parity that a lost disk would take with the data')

    // the pins wait, visibly, with why
    type Status = { state: string, pending?: boolean, waiting?: string, manifest?: string, stripes: unknown[] }
    const status = await shoalJson<Status>(d.repo, ['pin', 'status', '/big.bin'])
    assert.equal(status.state, 'pending')
    assert.equal(status.pending, true)
    assert.equal(status.manifest, undefined)
    assert.match(status.waiting ?? '', /^1 live node, ec:4\+2 needs 3 for its parity to survive a lost node/)
    const text = (await shoalOk(d.repo, ['pin', 'status', '/big.bin'])).toString()
    assert.match(text, /^state: pending$/m)
    assert.match(text, /pending: not coded yet: 1 live node, ec:4\+2 needs 3/)

    // --wait: the file is added and durable, but one node cannot meet ec:4+2: said in one line, exit 1
    await writeFile(join(dir, 'waited.bin'), randomBytes(2 * 1024 * 1024, 9))
    const waited = await runShoal(['--repo', d.repo, 'add', join(dir, 'waited.bin'), '--to', '/waited.bin', '--wait'])
    assert.equal(waited.code, 1)
    assert.equal(lines(waited.stderr).length, 1, waited.stderr)
    assert.match(waited.stderr, /policy is not met: 1 live node, ec:4\+2 needs 3 .*PolicyNotMetError/)
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/waited.bin']), randomBytes(2 * 1024 * 1024, 9), 'the file is added all the same')

    // re-code with another policy; bytes unchanged
    const repinned = await runShoal(['--repo', d.repo, 'pin', 'add', '/big.bin', '--policy', 'replicas:2'])
    assert.equal(repinned.code, 0, repinned.stderr)
    assert.match(repinned.stdout.toString(), /^pinned \/big\.bin replicas:2\n$/)
    assert.deepEqual(lines(repinned.stderr), ['shoal: note: /big.bin does not meet its policy yet: 1 live node, replicas:2 needs 2 for its copies to survive a lost node; it is coded and placed once they are live (`shoal pin status /big.bin`)'], 'pin add says it too')
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/big.bin']), big)

    // bad input: one line, non-zero exit, nothing changed
    for (const args of [
      ['add', join(dir, 'small.bin'), '--to', '/bad.bin', '--pin', 'ec:0+1'],
      ['add', join(dir, 'small.bin'), '--to', '/bad.bin', '--pin', 'raid5'],
      ['pin', 'add', '/big.bin', '--policy', 'ec:17+2'],
      ['pin', 'add', '/nope.bin'],
      ['pin', 'status', '/'],
      ['pin', 'rm', '/nope.bin']
    ]) {
      const r = await runShoal(['--repo', d.repo, ...args])
      assert.ok(r.code !== 0 && r.code !== null, `${args.join(' ')} fails`)
      assert.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`)
      assert.equal(r.stdout.length, 0)
    }
    assert.equal((await runShoal(['--repo', d.repo, 'stat', '/bad.bin'])).code, 1, 'no file was added by a refused add')
    assert.deepEqual((await shoalJson<Array<{ path: string, policy: string }>>(d.repo, ['pin', 'ls'])).map(p => [p.path, p.policy]).sort(), [['/big.bin', 'replicas:2'], ['/small.bin', 'ec:2+1'], ['/waited.bin', 'ec:4+2']])

    // unpin: the file stays, its policy is none, gc keeps its bytes (kept where it is)
    await shoalOk(d.repo, ['pin', 'rm', '/small.bin'])
    assert.deepEqual((await shoalJson<Array<{ path: string }>>(d.repo, ['pin', 'ls'])).map(p => p.path).sort(), ['/big.bin', '/waited.bin'])
    const repair = await shoalJson<{ lost: number, uncoded: number, errors: string[] }>(d.repo, ['repair', '--wait'])
    assert.equal(repair.lost, 0)
    assert.equal(repair.uncoded, 2, 'the repair pass counts the files that wait for live nodes (/big.bin, /waited.bin)')
    assert.match((await shoalOk(d.repo, ['repair', '--wait'])).toString(), /still waiting for live nodes: 2/)
    assert.match((await shoalOk(d.repo, ['status'])).toString(), /^health: +0 stripes of 0 placed files \(coded, or copies for replicas:N\) this node placed or holds shards of: 0 healthy, 0 at risk, 0 degraded, 0 lost; 2 files not coded yet, waiting for live nodes \(checked \d+ s ago\)$/m)
    assert.deepEqual(repair.errors, [])
    const scrubbed = await shoalJson<{ lost: number, scrub: { blocks: number, corrupt: number, lost: string[] } }>(d.repo, ['repair', '--scrub', '--wait'])
    assert.ok(scrubbed.scrub.blocks > 0, 'the scrub re-hashed the stored blocks')
    assert.equal(scrubbed.scrub.corrupt, 0)
    assert.deepEqual(scrubbed.scrub.lost, [])
    // --reindex: every pack read, the index checked against them; nothing to fix on a sound repo
    const reindexed = await shoalJson<{ reindex: { packs: number, records: number, corruptRecords: number, indexed: number, repointed: number, removed: number } }>(d.repo, ['repair', '--reindex', '--wait'])
    assert.ok(reindexed.reindex.packs > 0 && reindexed.reindex.records > 0)
    assert.deepEqual([reindexed.reindex.corruptRecords, reindexed.reindex.indexed, reindexed.reindex.repointed, reindexed.reindex.removed], [0, 0, 0, 0])
    assert.match((await shoalOk(d.repo, ['repair', '--reindex', '--wait'])).toString(), /^reindex: \d+ packs, \d+ intact records read, 0 corrupt; 0 indexed again, 0 repointed, 0 removed/m)
    const bigCid = (await shoalJson<{ cid: string }>(d.repo, ['stat', '/big.bin'])).cid
    await shoalOk(d.repo, ['rm', '/big.bin'])
    await shoalOk(d.repo, ['gc'])
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/small.bin']), small, 'an unpinned file is still readable after gc')
    // a reindex finds the records of deleted blocks still in the packs: they are collected again, never served
    const after = await shoalJson<{ reindex: { indexed: number }, gc?: { removed: number } }>(d.repo, ['repair', '--reindex', '--wait'])
    if (after.reindex.indexed > 0) assert.ok(after.gc !== undefined && after.gc.removed >= after.reindex.indexed, 'what it indexed again was collected')
    assert.equal((await runShoal(['--repo', d.repo, 'cat', bigCid])).code, 1, 'the removed file stays gone')
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/small.bin']), small)

    // a directory: one note for all its files that wait, not one per file
    await mkdir(join(dir, 'tree', 'sub'), { recursive: true })
    await writeFile(join(dir, 'tree', 'one.bin'), randomBytes(2 * 1024 * 1024, 21))
    await writeFile(join(dir, 'tree', 'sub', 'two.bin'), randomBytes(2 * 1024 * 1024, 22))
    const tree = await runShoal(['--repo', d.repo, 'add', join(dir, 'tree'), '--pin', 'ec:2+1'])
    assert.equal(tree.code, 0, tree.stderr)
    assert.equal(lines(tree.stdout.toString()).length, 3, 'an added line per file and one for the directory')
    assert.deepEqual(lines(tree.stderr), ['shoal: note: 2 files under /tree do not meet their policy yet: 1 live node, ec:2+1 needs 3 for its parity to survive a lost node; it is coded and placed once they are live (`shoal pin ls`)'])
    const treeJson = await runShoal(['--repo', d.repo, '--json', 'add', join(dir, 'tree'), '--to', '/tree2', '--pin', 'ec:2+1'])
    assert.equal(JSON.parse(treeJson.stdout.toString()).path, '/tree2')
    const treeNote = JSON.parse(treeJson.stderr) as { note: { path: string, pending: string, files: number } }
    assert.deepEqual([treeNote.note.path, treeNote.note.files], ['/tree2', 2])
    assert.match(treeNote.note.pending, /^1 live node, ec:2\+1 needs 3/)
  })
  it('pin status gives each stripe its state, in its line and in the JSON: pending with why, healthy, degraded once a holder stops', TEST, async t => {
    const dir = await tempDir(t)
    const repos = await initSwarm(dir, ['a', 'b', 'c'])
    const [a, b, c] = await Promise.all(repos.map(async r => await startDaemon(t, r)))
    const aAddr = (await shoalJson<{ addresses: string[] }>(a.repo, ['id'])).addresses[0]
    await shoalOk(b.repo, ['peers', 'connect', aAddr])
    await shoalOk(c.repo, ['peers', 'connect', aAddr])
    await eventually('a sees both peers', async () => (await shoalJson<unknown[]>(a.repo, ['peers', 'ls'])).length === 2)
    type Stripe = { index: number, state: string, health: string, live: number, shards: unknown[], waiting?: string }
    type Status = { state: string, stripes: Stripe[] }
    /** The `stripe N` lines of the text output, by index: [state, health live/all]. */
    const stripeLines = (text: string): Map<number, string[]> => new Map(text.split('\n').filter(l => l.startsWith('stripe ')).map(l => {
      const [head, state, health] = l.split('\t')
      return [Number(head.slice('stripe '.length)), [state, health]]
    }))

    // three nodes carry ec:4+2 coded, two shards each: every stripe waits for more live nodes, and says so (8 leaves: two whole stripes)
    await writeFile(join(dir, 'wide.bin'), randomBytes(2 * 1024 * 1024, 11))
    const addedWide = await runShoal(['--repo', a.repo, 'add', join(dir, 'wide.bin'), '--pin', 'ec:4+2', '--chunker', 'size-262144'])
    assert.equal(addedWide.code, 0, addedWide.stderr)
    assert.deepEqual(lines(addedWide.stderr), ['shoal: note: /wide.bin does not meet its policy yet: 3 live nodes, fewer than the 6 shards of ec:4+2: placed over them, it survives the loss of 1 node (not 2) until more are live, then it is placed again (`shoal pin status /wide.bin`)'])
    // a file of fewer leaves than k has fewer shards: one leaf and two parity shards fit three nodes, three leaves do not
    await writeFile(join(dir, 'one-leaf.bin'), randomBytes(100 * 1024, 14))
    const oneLeaf = await runShoal(['--repo', a.repo, 'add', join(dir, 'one-leaf.bin'), '--pin', 'ec:4+2', '--chunker', 'size-262144'])
    assert.deepEqual([oneLeaf.code, oneLeaf.stderr], [0, ''], 'three shards on three nodes: nothing to note')
    await writeFile(join(dir, 'three-leaves.bin'), randomBytes(600 * 1024, 15))
    const threeLeaves = await runShoal(['--repo', a.repo, 'add', join(dir, 'three-leaves.bin'), '--pin', 'ec:4+2', '--chunker', 'size-262144'])
    assert.deepEqual(lines(threeLeaves.stderr), ['shoal: note: /three-leaves.bin does not meet its policy yet: 3 live nodes, fewer than the 5 shards of its ec:4+2 stripe: placed over them, it survives the loss of 1 node (not 2) until more are live, then it is placed again (`shoal pin status /three-leaves.bin`)'])
    await eventually('/wide.bin coded and placed over three nodes', async () => (await shoalJson<Status>(a.repo, ['pin', 'status', '/wide.bin'])).stripes.some(s => s.waiting?.startsWith('placed over') === true))
    const wide = await shoalJson<Status>(a.repo, ['pin', 'status', '/wide.bin'])
    assert.equal(wide.state, 'pending')
    assert.ok(wide.stripes.length > 0)
    for (const s of wide.stripes) {
      assert.deepEqual([s.state, s.health], ['pending', 'at-risk'], `stripe ${s.index}`)
      assert.equal(s.waiting, 'placed over 3 live nodes, fewer than its 6 shards: placed again once more are live')
    }
    const wideText = (await shoalOk(a.repo, ['pin', 'status', '/wide.bin'])).toString()
    assert.match(wideText, /^state: pending$/m)
    assert.equal(wideText.split('\n').filter(l => l === 'pending: placed over 3 live nodes, fewer than its 6 shards: placed again once more are live').length, 1, 'the why once, not once per stripe')
    assert.deepEqual([...stripeLines(wideText)], wide.stripes.map(s => [s.index, ['pending', 'at-risk 6/6']]))
    // what a cluster that stays at three nodes does instead
    assert.match(wideText, /^at risk: .*a cluster that stays at 3 nodes carries a code of at most 3 shards: `shoal pin add \/wide\.bin --policy ec:2\+1` \(and durability\.largePolicy for new files\)$/m)
    // a file of one short stripe counts its own shards, not the code's k + m
    await eventually('/three-leaves.bin coded and placed over three nodes', async () => (await shoalJson<Status>(a.repo, ['pin', 'status', '/three-leaves.bin'])).stripes.some(s => s.waiting?.startsWith('placed over') === true))
    const three = await shoalJson<Status>(a.repo, ['pin', 'status', '/three-leaves.bin'])
    assert.deepEqual(three.stripes.map(s => [s.state, s.waiting]), [['pending', 'placed over 3 live nodes, fewer than its 5 shards: placed again once more are live']])

    // ec:2+1 on three nodes: every stripe healthy (listed with --all)
    await writeFile(join(dir, 'f.bin'), randomBytes(2 * 1024 * 1024, 12))
    const addedF = await runShoal(['--repo', a.repo, 'add', join(dir, 'f.bin'), '--pin', 'ec:2+1', '--wait'])
    assert.deepEqual([addedF.code, addedF.stderr], [0, ''], 'a policy met says nothing more')
    await writeFile(join(dir, 'g.bin'), randomBytes(2 * 1024 * 1024, 13))
    const addedG = await runShoal(['--repo', a.repo, 'add', join(dir, 'g.bin'), '--pin', 'replicas:3'])
    assert.deepEqual([addedG.code, addedG.stderr], [0, ''], 'three live nodes carry replicas:3: no note')
    const placed = await shoalJson<Status>(a.repo, ['pin', 'status', '/f.bin'])
    assert.equal(placed.state, 'healthy')
    assert.deepEqual(placed.stripes.map(s => s.state), placed.stripes.map(() => 'healthy'))
    assert.equal(stripeLines((await shoalOk(a.repo, ['pin', 'status', '/f.bin'])).toString()).size, 0, 'healthy stripes are listed with --all only')
    assert.deepEqual([...stripeLines((await shoalOk(a.repo, ['pin', 'status', '/f.bin', '--all'])).toString())], placed.stripes.map(s => [s.index, ['healthy', 'healthy 3/3']]))

    // a holder stops: every stripe with a shard there is degraded, in its line and in the JSON
    await c.stop()
    const degraded = await shoalJson<Status>(a.repo, ['pin', 'status', '/f.bin'])
    assert.equal(degraded.state, 'degraded')
    const lost = degraded.stripes.filter(s => s.live < 3)
    assert.ok(lost.length > 0)
    for (const s of degraded.stripes) assert.equal(s.state, s.live < 3 ? 'degraded' : 'healthy', `stripe ${s.index}`)
    assert.deepEqual([...stripeLines((await shoalOk(a.repo, ['pin', 'status', '/f.bin'])).toString())], lost.map(s => [s.index, ['degraded', `degraded ${s.live}/3`]]))
    assert.ok(b.child.exitCode === null, 'the other peer is still up')

    // the second holder stops too, once the writer let go of the leaves its peers hold (`gc`: else its copies read the
    // file here): stripes with one shard left are unreadable. `pin status` and `repair --wait` print their report and
    // exit 1 with one line saying so (a degraded file, above, exits 0)
    await shoalOk(a.repo, ['gc'])
    await b.stop()
    const gone = await runShoal(['--repo', a.repo, '--json', 'pin', 'status', '/f.bin'])
    assert.equal(gone.code, 1, gone.stderr)
    const goneStatus = JSON.parse(gone.stdout.toString()) as Status & { summary: { lost: number } }
    assert.equal(goneStatus.state, 'lost', 'the report is printed all the same')
    assert.equal(lines(gone.stderr).length, 1, gone.stderr)
    assert.equal(JSON.parse(gone.stderr).error.name, 'DataUnavailableError')
    const goneText = await runShoal(['--repo', a.repo, 'pin', 'status', '/f.bin'])
    assert.equal(goneText.code, 1)
    assert.match(goneText.stdout.toString(), /^state: lost$/m)
    // its holders went down a moment ago, within the grace period: said, as the repair pass waits for them
    const awayStripes = goneStatus.stripes.filter(s => s.live < 2) as Array<Stripe & { away?: number }>
    assert.ok(awayStripes.length > 0 && awayStripes.every(s => s.away !== undefined && s.live + s.away >= 2), JSON.stringify(awayStripes.map(s => [s.live, s.away])))
    assert.match(goneText.stdout.toString(), new RegExp(`^away: ${awayStripes.length} lost stripes? would read again with holders that went down within the grace period`, 'm'))
    assert.deepEqual(lines(goneText.stderr), [`shoal: pin status /f.bin found data unreadable now: ${goneStatus.summary.lost} stripe${goneStatus.summary.lost === 1 ? '' : 's'} with fewer than k shards reachable (lost, or their holders away) (the report above says which) (DataUnavailableError)`])
    const repair = await runShoal(['--repo', a.repo, 'repair', '--wait'])
    assert.equal(repair.code, 1, repair.stderr)
    assert.match(repair.stdout.toString(), /pinned files, \d+ stripes: .*lost/)
    assert.match(lines(repair.stderr).join('\n'), /^shoal: the repair pass found data unreadable now: \d+ stripes? with fewer than k shards reachable .*\(DataUnavailableError\)$/)
  })
})
