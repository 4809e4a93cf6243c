/**
 * The journal of closed files (node/fuse/journal.ts) and the rescue a start
 * makes of it (node/fuse/rescue.ts), on real files: what is read back is
 * exactly what still waits for its commit, whatever segments were cut and
 * deleted; a damaged tail is read up to; a clean close leaves nothing; a
 * rescue commits with the version each writer started from (a version
 * written meanwhile is kept beside it) and keeps what cannot be committed.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { pino } from 'pino'
import type { Files } from '../../../node/files/index.js'
import { parseChunker } from '../../../node/content/index.js'
import type { Replica } from '../../../node/namespace/index.js'
import { ClosedJournal, readJournal, type ClosedFile } from '../../../node/fuse/journal.js'
import { commitRescued, rescueClosedFiles } from '../../../node/fuse/rescue.js'
import { DiskGuard } from '../../../node/repo/disk.js'
import { tempDir, type CleanupContext } from '../../helpers/temp.js'
import { mountTestNode, openTestFiles, python } from './helpers.js'

const silent = pino({ level: 'silent' })
const chunker = parseChunker('fastcdc')

function closedFile (id: number, gen: number, path = `/f${id}`): ClosedFile {
  return { id, gen, path, mode: 0o644, mtime: 1_700_000_000_000 + gen, replacing: null, size: 0 }
}

async function segments (dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [])).filter(n => n.endsWith('.log')).sort()
}

/** A deterministic generator (mulberry32). */
function random (seed: number): () => number {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

describe('the journal of closed files', () => {
  it('reads back exactly the files still waiting, through random closes, commits, removals, renames and mode changes over small segments', async t => {
    const root = await tempDir(t)
    for (const seed of [1, 2, 3]) {
      const dir = join(root, `journal-${seed}`)
      const next = random(seed)
      const journal = new ClosedJournal(dir, { segmentBytes: 200 })
      // what should be waiting: id → its newest acknowledgment (path, gen, bytes)
      const model = new Map<number, { gen: number, path: string, bytes: string, mode: number, mtime: number, replacing: string | null }>()
      const gens = new Map<number, number>()
      for (let step = 0; step < 300; step++) {
        const id = 1 + Math.floor(next() * 6)
        const r = next()
        if (r < 0.45) {
          const gen = (gens.get(id) ?? 0) + 1
          gens.set(id, gen)
          const path = model.get(id)?.path ?? `/f${id}`
          const bytes = `seed ${seed} step ${step} id ${id}`
          const file = closedFile(id, gen, path)
          journal.closed(file, { bytes: Buffer.from(bytes) })
          model.set(id, { gen, path, bytes, mode: file.mode, mtime: file.mtime, replacing: file.replacing })
        } else if (r < 0.75) {
          // a commit of some generation up to the newest (an older one settles nothing newer)
          const gen = Math.floor(next() * ((gens.get(id) ?? 0) + 1))
          journal.done(id, gen)
          const m = model.get(id)
          if (m !== undefined && m.gen <= gen) model.delete(id)
        } else if (r < 0.79) {
          journal.forget(id)
          model.delete(id)
        } else if (r < 0.82) {
          // an older generation's commit landed: the waiting one now replaces that version
          const replacing = `cid-${step}`
          journal.rebased(id, replacing)
          const m = model.get(id)
          if (m !== undefined) m.replacing = replacing
        } else if (r < 0.9) {
          // a chmod or utime after the close: noted alone while a record waits
          const gen = (gens.get(id) ?? 0) + 1
          gens.set(id, gen)
          const meta = { mode: 0o600 + step % 64, mtime: 1_800_000_000_000 + step }
          const m = model.get(id)
          assert.equal(journal.changed(id, gen, meta), m !== undefined)
          if (m !== undefined) Object.assign(m, { gen }, meta)
        } else {
          const path = `/moved-${step}`
          journal.moved(id, path)
          const m = model.get(id)
          if (m !== undefined) m.path = path
        }
        const read = readJournal(dir)
        assert.deepEqual(read.torn, [])
        const got = new Map(read.waiting.map(f => [f.id, { gen: f.gen, path: f.path, bytes: 'bytes' in f ? f.bytes.toString() : '', mode: f.mode, mtime: f.mtime, replacing: f.replacing }]))
        assert.deepEqual(got, model, `seed ${seed}, step ${step}`)
        assert.equal(journal.pending, model.size)
        if (model.size === 0) assert.deepEqual(await segments(dir), [], 'nothing waits: no segment left')
      }
      journal.close()
      assert.equal(readJournal(dir).waiting.length, model.size, 'a close keeps what waits, and only that')
      // a journal opened on what a crash left numbers its segments after them: both are read, in order
      const later = new ClosedJournal(dir, { segmentBytes: 200 })
      later.closed(closedFile(100, 1), { stagedAt: '/staged-later' })
      const ids = readJournal(dir).waiting.map(f => f.id)
      assert.equal(ids.at(-1), 100, 'the later one read last')
      assert.deepEqual(new Set(ids.slice(0, -1)), new Set(model.keys()))
      later.close()
    }
  })

  it('cuts segments as they fill, deletes them oldest first once nothing in them waits, and none is left when nothing waits', async t => {
    const dir = join(await tempDir(t), 'journal')
    const journal = new ClosedJournal(dir, { segmentBytes: 1 })
    for (let id = 1; id <= 4; id++) journal.closed(closedFile(id, 1), { bytes: Buffer.alloc(10, id) })
    assert.equal((await segments(dir)).length, 4, 'one record a segment at this size')
    journal.done(2, 1)
    journal.done(3, 1)
    assert.equal((await segments(dir)).length, 6, 'the oldest still waits: nothing deleted (each done mark went to a segment of its own at this size)')
    journal.done(1, 1)
    assert.deepEqual(readJournal(dir).waiting.map(f => f.id), [4])
    assert.deepEqual(await segments(dir), ['00000004.log', '00000005.log', '00000006.log', '00000007.log'], 'the first three went; the fourth still waits, and the done marks after it stay')
    journal.done(4, 1)
    assert.deepEqual(await segments(dir), [])
    journal.close()
  })

  it('a record that keeps waiting is copied forward: the journal stays the size of what waits, not of everything closed since', async t => {
    const dir = join(await tempDir(t), 'journal')
    const journal = new ClosedJournal(dir, { segmentBytes: 64 * 1024 })
    journal.closed(closedFile(1, 1, '/stuck'), { bytes: Buffer.from('its commit keeps failing') })
    journal.moved(1, '/stuck-renamed')
    for (let id = 2; id < 2000; id++) {
      journal.closed(closedFile(id, 1), { bytes: Buffer.alloc(4096, id) })
      journal.done(id, 1)
    }
    const files = await segments(dir)
    assert.ok(files.length <= 5, `${files.length} segments for one waiting record after 8 MiB closed`)
    const read = readJournal(dir)
    assert.deepEqual(read.waiting.map(f => [f.id, f.path, 'bytes' in f ? f.bytes.toString() : '']), [[1, '/stuck-renamed', 'its commit keeps failing']])
    journal.done(1, 1)
    assert.deepEqual(await segments(dir), [])
    journal.close()
  })

  it('many waiting records in the oldest segments (a full disk holding back small files) do not keep every segment closed after them', async t => {
    const dir = join(await tempDir(t), 'journal')
    const journal = new ClosedJournal(dir, { segmentBytes: 4096 })
    for (let id = 1; id <= 3; id++) journal.closed(closedFile(id, 1, `/stuck-${id}`), { bytes: Buffer.alloc(1000, id) })
    for (let id = 10; id < 5000; id++) {
      journal.closed(closedFile(id, 1), { bytes: Buffer.alloc(300, 1) })
      journal.done(id, 1)
    }
    const files = await segments(dir)
    assert.ok(files.length <= 8, `${files.length} segments for 3 waiting records of 1 KB`)
    assert.deepEqual(readJournal(dir).waiting.map(f => f.path).sort(), ['/stuck-1', '/stuck-2', '/stuck-3'])
    journal.close()
  })

  it('a segment whose tail was cut or damaged is read up to it, and said', async t => {
    const dir = join(await tempDir(t), 'journal')
    const journal = new ClosedJournal(dir)
    journal.closed(closedFile(1, 1), { bytes: Buffer.from('kept') })
    const whole = (await stat(join(dir, (await segments(dir))[0]))).size
    journal.closed(closedFile(2, 1), { bytes: Buffer.from('cut short') })
    const file = join(dir, (await segments(dir))[0])
    await truncate(file, (await stat(file)).size - 3)
    let read = readJournal(dir)
    assert.deepEqual(read.waiting.map(f => f.id), [1])
    assert.deepEqual(read.torn, [file])
    // a flipped byte in the second record: its checksum fails
    await truncate(file, whole)
    journal.closed(closedFile(3, 1), { bytes: Buffer.from('damaged') })
    const data = await readFile(file)
    data[data.length - 2] ^= 0xff
    await writeFile(file, data)
    read = readJournal(dir)
    assert.deepEqual(read.waiting.map(f => f.id), [1])
    assert.deepEqual(read.torn, [file])
    journal.close()
  })
})

/** A Files over a real block store and an in-memory replica; `reserve` makes every add find no room. */
async function testFiles (t: CleanupContext, root: string, options: { reserve?: number } = {}): Promise<{ files: Files, namespace: Replica }> {
  return await openTestFiles(t, root, { disk: options.reserve === undefined ? undefined : new DiskGuard({ path: root, reserveBytes: options.reserve }) })
}

async function textOf (files: Files, path: string): Promise<string> {
  const parts: Uint8Array[] = []
  for await (const p of files.cat(path)) parts.push(p)
  return Buffer.concat(parts).toString()
}

describe('a start after a crash: the rescue of closed files', () => {
  it('takes the waiting files out (bytes from the record, or the staging file up to the length acknowledged), says which staging files are gone, and deletes the journal', async t => {
    const root = await tempDir(t)
    const dir = join(root, 'fuse-journal')
    const staged = join(root, 'staged-1')
    // bytes appended after the close that was acknowledged: not part of that version
    await writeFile(staged, 'staged on disk, and written on after the close')
    const journal = new ClosedJournal(dir)
    journal.closed(closedFile(1, 1, '/small'), { bytes: Buffer.from('staged in memory') })
    journal.closed({ ...closedFile(2, 3, '/large'), size: 'staged on disk'.length }, { stagedAt: staged })
    journal.closed(closedFile(3, 1, '/gone'), { stagedAt: join(root, 'deleted-meanwhile') })
    journal.closed(closedFile(4, 1, '/committed'), { bytes: Buffer.from('landed') })
    journal.done(4, 1)
    const rescue = await rescueClosedFiles({ journal: dir, logger: silent })
    assert.equal(rescue.files, 2)
    assert.deepEqual(rescue.lost, ['/gone'])
    assert.deepEqual(await segments(dir), [])
    const list = JSON.parse(await readFile(join(rescue.folder as string, 'files.json'), 'utf8'))
    assert.deepEqual(list.map((f: any) => f.path), ['/small', '/large'])
    assert.equal(await readFile(join(rescue.folder as string, list[1].file), 'utf8'), 'staged on disk')
    // a second start finds nothing more to take out
    assert.deepEqual(await rescueClosedFiles({ journal: dir, logger: silent }), { files: 0, lost: [] })
  })

  it('commits each file replacing the version it started from: one written meanwhile is kept beside it, not overwritten', async t => {
    const root = await tempDir(t)
    const dir = join(root, 'fuse-journal')
    const { files, namespace } = await testFiles(t, root)
    const one = async function * (s: string): AsyncGenerator<Uint8Array> { yield Buffer.from(s) }
    const first = await files.add('/edited', one('version 1'), { chunker })
    await files.add('/raced', one('version 1'), { chunker })
    const raced = (await namespace.stat('/raced')) as { cid: string }
    // written while this node was down (another node's write, arrived after the restart)
    await files.add('/raced', one('written meanwhile'), { chunker })
    const journal = new ClosedJournal(dir)
    journal.closed({ ...closedFile(1, 2, '/edited'), replacing: first.cid }, { bytes: Buffer.from('version 2') })
    journal.closed({ ...closedFile(2, 2, '/raced'), replacing: raced.cid }, { bytes: Buffer.from('edited here') })
    journal.closed(closedFile(3, 1, '/new'), { bytes: Buffer.from('a new file') })
    await rescueClosedFiles({ journal: dir, logger: silent })
    const done = await commitRescued({ files, chunker, logger: silent }, { journal: dir, uncommitted: join(root, 'uncommitted') })
    assert.deepEqual(done.kept, [])
    assert.deepEqual(done.committed.map(c => c.path).sort(), ['/edited', '/new', '/raced'])
    assert.equal(await textOf(files, '/edited'), 'version 2')
    assert.equal(await textOf(files, '/new'), 'a new file')
    const conflicts = await namespace.conflicts()
    assert.equal(conflicts.length, 1, 'the two versions of /raced are both kept')
    const texts = [await textOf(files, '/raced'), await textOf(files, conflicts[0].copy)].sort()
    assert.deepEqual(texts, ['edited here', 'written meanwhile'])
    assert.deepEqual((await readdir(dir)).filter(n => n.startsWith('rescued-')), [], 'the rescue folder went')
  })

  it('files that can be neither committed nor kept stay for the next start, and the rescue ends; the next start commits them', async t => {
    const root = await tempDir(t)
    const dir = join(root, 'fuse-journal')
    const journal = new ClosedJournal(dir)
    for (let i = 0; i < 300; i++) journal.closed(closedFile(i + 1, 1, `/f${i}`), { bytes: Buffer.from(`file ${i}`) })
    await rescueClosedFiles({ journal: dir, logger: silent })
    // no room for a commit, and no folder can be made where they would be kept (a file is in the way)
    const full = await testFiles(t, join(root, 'full'), { reserve: 2 ** 50 })
    await writeFile(join(root, 'uncommitted'), 'in the way')
    const first = await commitRescued({ files: full.files, chunker, logger: silent }, { journal: dir, uncommitted: join(root, 'uncommitted') })
    assert.deepEqual([first.committed.length, first.kept.length], [0, 0])
    const folder = (await readdir(dir)).filter(n => n.startsWith('rescued-'))
    assert.equal(folder.length, 1, 'the rescue folder stays')
    assert.equal(JSON.parse(await readFile(join(dir, folder[0], 'files.json'), 'utf8')).length, 300)
    const room = await testFiles(t, join(root, 'room'))
    const second = await commitRescued({ files: room.files, chunker, logger: silent }, { journal: dir, uncommitted: join(root, 'uncommitted') })
    assert.equal(second.committed.length, 300)
    assert.equal(await textOf(room.files, '/f299'), 'file 299')
    assert.deepEqual(await readdir(dir), [])
  })

  it('keeps a file it cannot commit in uncommitted/, at its path, with its mode; a rescue interrupted before its list is dropped (its journal is read again)', async t => {
    const root = await tempDir(t)
    const dir = join(root, 'fuse-journal')
    const { files, namespace } = await testFiles(t, root, { reserve: 2 ** 50 })
    const journal = new ClosedJournal(dir)
    journal.closed({ ...closedFile(1, 1, '/docs/notes.txt'), mode: 0o640 }, { bytes: Buffer.from('no room') })
    await rescueClosedFiles({ journal: dir, logger: silent })
    // a rescue a crash cut before its list: nothing in it is committed, and it goes
    const interrupted = join(dir, 'rescued-0000-interrupted')
    await mkdir(interrupted)
    await writeFile(join(interrupted, '0'), 'half')
    const done = await commitRescued({ files, chunker, logger: silent }, { journal: dir, uncommitted: join(root, 'uncommitted') })
    assert.deepEqual(done.committed, [])
    assert.equal(done.kept.length, 1)
    assert.match(done.kept[0].err, /no room/)
    assert.equal(done.kept[0].keptAt, join(root, 'uncommitted', (await readdir(join(root, 'uncommitted')))[0], 'docs', 'notes.txt'))
    assert.equal(await readFile(done.kept[0].keptAt, 'utf8'), 'no room')
    assert.equal((await stat(done.kept[0].keptAt)).mode & 0o777, 0o640)
    assert.equal(await namespace.lookup('/docs/notes.txt'), undefined)
    assert.deepEqual(await readdir(dir), [], 'both folders went')
  })
})

describe('the journal of a mount', () => {
  it('a file closed again with the same bytes (a dup, a child\'s copy of the descriptor) is noted once', { timeout: 60_000 }, async t => {
    const m = await mountTestNode(t)
    const journal = join(dirname(m.dir), 'repo', 'fuse-journal')
    const r = await python(`
import os
fd = os.open(${JSON.stringify(join(m.dir, 'build.log'))}, os.O_CREAT | os.O_WRONLY)
os.write(fd, b'x' * 524288)
for i in range(40):
    os.close(os.dup(fd))
total = sum(os.path.getsize(os.path.join(${JSON.stringify(journal)}, n)) for n in os.listdir(${JSON.stringify(journal)}))
print(total)
os.close(fd)
`)
    assert.equal(r.code, 0, r.stderr)
    const bytes = Number(r.stdout.trim())
    assert.ok(bytes > 512 * 1024 && bytes < 2 * 512 * 1024, `the journal holds the file once: ${bytes} bytes after 40 closes of copies`)
  })
})

