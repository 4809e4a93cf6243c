/**
 * What a daemon says of blocks it lost, on real daemons (127.0.0.1, real
 * packs and LevelDB in temp repos).
 *
 * - The scrub's lost list named each block by a CID rebuilt with the raw
 *   codec from the multihash (the block index knows no codec): a file's
 *   dag-pb root was shown under a CID that names another block. And the
 *   blocks of a removed file, awaiting gc, were listed as lost too. Now each
 *   lost block is named by the CID its file's DAG links it with, with the
 *   file's path, and leftovers nothing needs are counted apart, not lost.
 * - `shoal status` said nothing of a `pin none` file whose blocks are gone
 *   (only `pin status PATH` did). Now its `damage:` line says what the open
 *   found gone, which file a read failed on, and what the last scrub lost,
 *   without walking any DAG.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CarReader } from '@ipld/car'
import { CID } from 'multiformats/cid'
import { randomBytes } from '../helpers/bytes.js'
import { lines, runShoal, shoalJson, shoalOk, startDaemon, type TestDaemon } from '../helpers/cli.js'
import { tempDir, type CleanupContext } from '../helpers/temp.js'
import { flipRecord, recordLocation } from '../node/blocks/fixtures.js'

const TEST = { timeout: 120_000 }
const CHUNKER = ['--chunker', 'size-262144']
const DAG_PB = 0x70
const RAW = 0x55

/** The `damage:` line of `shoal status`, if any. */
async function damageLine (repo: string): Promise<string | undefined> {
  return lines((await shoalOk(repo, ['status'])).toString('utf8')).find(l => l.startsWith('damage:'))
}

/**
 * `repair --scrub --wait` (`--json` with `json`) on a node whose files lost blocks: its report on stdout, and
 * its exit 1 with one line saying data is unreadable (a monitor sees it in the exit status).
 */
async function scrubFindingLoss (repo: string, json = false): Promise<string> {
  const r = await runShoal(['--repo', repo, ...(json ? ['--json'] : []), 'repair', '--scrub', '--wait'])
  assert.equal(r.code, 1, r.stderr)
  assert.equal(lines(r.stderr).length, 1, r.stderr)
  assert.match(r.stderr, /DataUnavailableError/)
  assert.match(r.stderr, /the repair pass found data unreadable now: \d+ blocks? of files that no peer supplied/)
  return r.stdout.toString('utf8')
}

/** A daemon on a new repo with `/keep.bin` (1 MiB, `pin none`: a dag-pb root over 4 raw leaves) and the CID of its root. */
async function daemonWithFile (t: CleanupContext): Promise<{ d: TestDaemon, dir: string, cid: string }> {
  const d = await startDaemon(t)
  const dir = await tempDir(t, 'shoal-lost-')
  await writeFile(join(dir, 'keep.bin'), randomBytes(1024 * 1024, 71))
  const { cid } = await shoalJson<{ cid: string }>(d.repo, ['add', join(dir, 'keep.bin'), '--to', '/keep.bin', '--pin', 'none', ...CHUNKER])
  assert.equal(CID.parse(cid).code, DAG_PB)
  return { d, dir, cid }
}

/** The CIDs of the blocks under `cid` other than itself, read from a CAR the daemon exports. */
async function leavesOf (repo: string, dir: string, cid: string): Promise<string[]> {
  const car = join(dir, `${cid}.car`)
  await shoalOk(repo, ['car', 'export', cid, '-o', car])
  const reader = await CarReader.fromBytes(await readFile(car))
  const out: string[] = []
  for await (const block of reader.blocks()) if (!block.cid.equals(CID.parse(cid))) out.push(block.cid.toString())
  return out
}

describe('lost blocks, as the scrub and `shoal status` tell them', () => {
  it('the scrub names each lost block by its own CID with its file; a removed file\'s blocks are leftovers, not lost', TEST, async t => {
    const { d, dir, cid } = await daemonWithFile(t)
    const leaves = await leavesOf(d.repo, dir, cid)
    assert.equal(leaves.length, 4)
    assert.ok(leaves.every(c => CID.parse(c).code === RAW))
    // a removed file: its 5 blocks wait for gc
    await writeFile(join(dir, 'gone.bin'), randomBytes(1024 * 1024, 72))
    const gone = await shoalJson<{ cid: string }>(d.repo, ['add', join(dir, 'gone.bin'), '--to', '/gone.bin', '--pin', 'none', ...CHUNKER])
    const goneBlocks = [gone.cid, ...await leavesOf(d.repo, dir, gone.cid)]
    assert.equal(goneBlocks.length, 5)
    await shoalOk(d.repo, ['rm', '/gone.bin'])
    assert.equal((await d.stop()).code, 0)

    // blocks rot on disk: every block of the kept file (its root so that it still decodes: a byte of
    // its Data) and of the removed one
    const blocks = join(d.repo, 'blocks')
    await flipRecord(blocks, await recordLocation(blocks, CID.parse(cid)), { at: 'last', mask: 1 })
    for (const leaf of [...leaves, ...goneBlocks]) await flipRecord(blocks, await recordLocation(blocks, CID.parse(leaf)))
    const again = await startDaemon(t, d.repo)

    const out = lines(await scrubFindingLoss(again.repo))
    const scrubLine = out.find(l => l.startsWith('scrub:'))
    assert.match(scrubLine ?? '', /10 corrupt: 0 rebuilt from their stripes, 0 fetched again, 5 lost, 5 leftovers no file here needs \(of removed files: `shoal gc` drops them; not lost\)/, out.join('\n'))
    const lost = out.filter(l => l.startsWith('lost:')).map(l => l.slice('lost: '.length).split('\t'))
    assert.deepEqual(new Set(lost.map(([c]) => c)), new Set([cid, ...leaves]), 'each lost block under the CID its file names it with (the root is dag-pb)')
    assert.ok(lost.every(([, paths]) => paths === '/keep.bin'), 'each with its file')

    // `shoal status` says it in one line, from the scrub's findings (kept across a restart)
    // what clears it is said: a scrub's finding stays until the next scrub (a pin status does not clear it)
    assert.match(await damageLine(again.repo) ?? '', /^damage: +1 file found missing blocks here: \/keep\.bin \(lost in the scrub \d+ s ago\); the scrub's stay until the next `shoal repair --scrub --wait`$/)
    const status = await shoalJson<{ damage: { scrub: { corrupt: number, lost: number, leftovers: number, files: Array<{ path: string, cid: string }> } } }>(again.repo, ['status'])
    assert.deepEqual({ ...status.damage.scrub, at: undefined }, { at: undefined, corrupt: 10, lost: 5, leftovers: 5, unknown: 0, files: [{ path: '/keep.bin', cid }], moreFiles: 0, unowned: 0 })

    // the next scrub finds nothing corrupt (the lost blocks were deleted), but looks for them again: still lost, still
    // said (before, it reported 0 lost and `status` then said no damage while the file could not be read)
    const next = lines(await scrubFindingLoss(again.repo))
    assert.match(next.find(l => l.startsWith('scrub:')) ?? '', / 0 corrupt and 5 lost before, looked for again: 0 rebuilt from their stripes, 0 fetched again, 5 lost$/, next.join('\n'))
    assert.deepEqual(new Set(next.filter(l => l.startsWith('lost:')).map(l => l.slice('lost: '.length).split('\t')[0])), new Set([cid, ...leaves]))
    assert.equal((await again.stop()).code, 0)
    const third = await startDaemon(t, d.repo)
    assert.match(await damageLine(third.repo) ?? '', /\/keep\.bin \(lost in the scrub/)
    // the file removed, nothing is known damaged any more
    await shoalOk(third.repo, ['rm', '/keep.bin'])
    assert.match(await damageLine(third.repo) ?? '', /^damage: +none known \(last scrub \d+ s ago;/)
    // and a scrub after that drops them: nothing needs them, nothing is lost, nothing counted
    const after = await shoalJson<{ scrub: { corrupt: number, missing: number, lost: unknown[], leftovers: number, unknown: number } }>(third.repo, ['repair', '--scrub', '--wait'])
    assert.deepEqual([after.scrub.corrupt, after.scrub.missing, after.scrub.lost.length, after.scrub.leftovers, after.scrub.unknown], [0, 5, 0, 0, 0])
  })

  it('a block lost before is dropped once its file is written anew, while another file\'s lost root is still reported', TEST, async t => {
    const { d, dir, cid } = await daemonWithFile(t)
    await writeFile(join(dir, 'other.bin'), randomBytes(1024 * 1024, 73))
    const other = await shoalJson<{ cid: string }>(d.repo, ['add', join(dir, 'other.bin'), '--to', '/other.bin', '--pin', 'none', ...CHUNKER])
    const [otherLeaf] = await leavesOf(d.repo, dir, other.cid)
    assert.equal((await d.stop()).code, 0)
    const blocks = join(d.repo, 'blocks')
    await flipRecord(blocks, await recordLocation(blocks, CID.parse(cid)), { at: 'last', mask: 1 })
    await flipRecord(blocks, await recordLocation(blocks, CID.parse(otherLeaf)))
    const again = await startDaemon(t, d.repo)
    const lostIn = (out: string[]): string[] => out.filter(l => l.startsWith('lost:')).map(l => l.slice('lost: '.length)).sort()
    const first = lines(await scrubFindingLoss(again.repo))
    assert.deepEqual(lostIn(first), [`${cid}\t/keep.bin`, `${otherLeaf}\t/other.bin`].sort(), first.join('\n'))
    // /other.bin written anew: its old leaf is nobody's now
    await writeFile(join(dir, 'other2.bin'), randomBytes(300 * 1024, 74))
    await shoalOk(again.repo, ['rm', '/other.bin'])
    await shoalOk(again.repo, ['add', join(dir, 'other2.bin'), '--to', '/other.bin', '--pin', 'none', ...CHUNKER])
    const second = lines(await scrubFindingLoss(again.repo))
    assert.match(second.find(l => l.startsWith('scrub:')) ?? '', / 0 corrupt and 2 lost before, looked for again: 0 rebuilt from their stripes, 0 fetched again, 1 lost$/, second.join('\n'))
    assert.deepEqual(lostIn(second), [`${cid}\t/keep.bin`], 'only /keep.bin\'s root, which is still its file\'s')
  })

  it('`shoal status` tells a `pin none` file whose blocks are gone: at start, after a failed read, after a scrub', TEST, async t => {
    const { d, cid } = await daemonWithFile(t)
    assert.match(await damageLine(d.repo) ?? '', /^damage: +none known \(no scrub yet/)
    assert.equal((await d.stop()).code, 0)
    // every pack deleted while the daemon is stopped
    const packs = join(d.repo, 'blocks', 'packs')
    for (const name of await readdir(packs)) if (name.endsWith('.pack')) await unlink(join(packs, name))
    const again = await startDaemon(t, d.repo)

    // the open found them gone: said at once, with what names their files
    assert.match(await damageLine(again.repo) ?? '', /5 blocks gone at start \(in missing or short packs\): `shoal repair --scrub --wait` names their files/)

    // a read fails for want of a block: the file is named
    const cat = await runShoal(['--repo', again.repo, 'cat', '/keep.bin'])
    assert.notEqual(cat.code, 0)
    assert.match(await damageLine(again.repo) ?? '', /1 file found missing blocks here: \/keep\.bin \(a read failed \d+ s ago\); `shoal pin status PATH` checks one again/)
    const status = await shoalJson<{ damage: { files: Array<{ path: string, cid: string, by: string }> } }>(again.repo, ['status'])
    assert.deepEqual(status.damage.files.map(f => ({ path: f.path, cid: f.cid, by: f.by })), [{ path: '/keep.bin', cid, by: 'read' }])
    // `pin status` walks it: its finding takes the read's place, and it exits 1 (the file reads from no one)
    const pinStatus = await runShoal(['--repo', again.repo, 'pin', 'status', '/keep.bin'])
    assert.equal(pinStatus.code, 1, pinStatus.stderr)
    assert.match(pinStatus.stdout.toString('utf8'), /^held by no peer that answered: 1 of the 1 asked about: the file does not read now$/m)
    assert.equal(lines(pinStatus.stderr).length, 1, pinStatus.stderr)
    assert.match(pinStatus.stderr, /pin status \/keep\.bin found data unreadable now: 1 block of files that no peer supplied .*DataUnavailableError/)
    assert.match(await damageLine(again.repo) ?? '', /1 file found missing blocks here: \/keep\.bin \(pin status \d+ s ago\)/)

    // the scrub names the file too (its root: the leaves below it cannot be told from leftovers), and
    // what the open found is no longer told apart
    const scrub = JSON.parse(await scrubFindingLoss(again.repo, true)) as { scrub: { corrupt: number, lost: Array<{ cid: string, paths: string[] }>, leftovers: number, unknown: number } }
    assert.deepEqual({ ...scrub.scrub, blocks: undefined, bytes: undefined }, { blocks: undefined, bytes: undefined, corrupt: 5, missing: 0, rebuilt: 0, refetched: 0, lost: [{ cid, paths: ['/keep.bin'] }], leftovers: 0, unknown: 4, errors: [] })
    const line = await damageLine(again.repo) ?? ''
    assert.match(line, /1 file found missing blocks here: \/keep\.bin/)
    assert.doesNotMatch(line, /gone at start/)
  })
})
