/**
 * A rename, and a listing, racing a background commit of the file they
 * touch, on the file system a mount shows (no kernel in between: the race
 * needs the commit at one exact moment of the rename or the listing, which
 * only a gate on the namespace's lookups or lists makes certain). Real
 * block store, real replica.
 *
 * What a user saw before the fix: `git config` writes `.git/config.lock`,
 * renames it over `.git/config`; when the lock file's background commit
 * started while the rename was looking names up, the commit wrote
 * `config.lock` back under its old name and the rename removed `config` —
 * the next `git config` failed with "could not lock config file". Also here,
 * on the same file system: a directory's mode and time changed through it
 * (tar, cp -a and rsync make directories 0700 and set their modes after).
 * And `ls`
of a directory being filled listed fewer names than it held (1,962 of
2,000): a file whose commit ended while the namespace was listed had left
the staged files before they were read.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { Files } from '../../../node/files/index.js'
import { parseChunker } from '../../../node/content/index.js'
import type { Namespace, Replica } from '../../../node/namespace/index.js'
import { ShoalFilesystem } from '../../../node/fuse/filesystem.js'
import { StagingArea } from '../../../node/fuse/staging.js'
import { defer, openBlockStore, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { silent, testReplica } from './helpers.js'
import { file, pullInto, replica as peerReplica } from '../namespace/helpers.js'

/** A namespace whose `lookup` of one path answers, then waits at a gate the test opens before returning that (by then stale) answer. */
interface Gated {
  namespace: Namespace
  /** Resolves when a lookup of the gated path is waiting at the gate. */
  reached: Promise<void>
  /** From now on, the next lookup of the path waits. */
  arm: () => void
  open: () => void
}

function gateLookup (namespace: Namespace, path: string, op: 'lookup' | 'list' = 'lookup'): Gated {
  let open!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  let arrived!: () => void
  const reached = new Promise<void>(resolve => { arrived = resolve })
  let armed = false
  const gated = new Proxy(namespace, {
    get (target, prop, receiver) {
      if (prop === op) {
        return async (p: string) => {
          const answer = await target[op](p)
          if (armed && p === path) {
            armed = false
            arrived()
            await gate
          }
          return answer
        }
      }
      const value = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  return { namespace: gated, reached, arm: () => { armed = true }, open }
}

async function setup (t: CleanupContext, gatePath: string, op: 'lookup' | 'list' = 'lookup'): Promise<{ fs: ShoalFilesystem, replica: Replica, gated: Gated }> {
  const root = await tempDir(t, 'shoal-fuse-rename-')
  const blockstore = await openBlockStore(t, join(root, 'blocks'))
  const replica = await testReplica(t)
  const files = new Files({ blockstore, namespace: replica, logger: silent })
  const gated = gateLookup(replica, gatePath, op)
  // commits start as soon as a file is closed (no linger): the race is then one tick wide
  const fs = new ShoalFilesystem({ files, namespace: gated.namespace, chunker: parseChunker('fastcdc'), logger: silent }, {
    staging: new StagingArea(join(root, 'staging')),
    attrCacheMs: 0
  })
  defer(t, async () => { await fs.close() })
  return { fs, replica, gated }
}

async function writeFile (fs: ShoalFilesystem, path: string, text: string): Promise<void> {
  const fh = await fs.create(path, 0o644)
  const bytes = Buffer.from(text)
  await fs.write(fh, bytes, bytes.byteLength, 0)
  await fs.flush(fh)
  await fs.release(fh)
}

/** {@link writeFile}, then committed to the namespace (an fsync). */
async function committedFile (fs: ShoalFilesystem, path: string, text: string): Promise<void> {
  await writeFile(fs, path, text)
  await fs.fsync(undefined, path)
}

async function textOf (fs: ShoalFilesystem, path: string): Promise<string> {
  const attr = await fs.getattr(path)
  const fh = await fs.open(path, 0)
  try {
    const buf = Buffer.alloc(attr.size)
    const n = await fs.read(fh, buf, buf.byteLength, 0)
    return buf.subarray(0, n).toString()
  } finally {
    await fs.release(fh)
  }
}

describe('rename racing a background commit', () => {
  it('a staged file renamed over an existing one while its commit starts lands under the new name only', async t => {
    const { fs, replica, gated } = await setup(t, '/config.lock')
    await committedFile(fs, '/config', 'old\n')
    // git's way: write the new version to a lock file, rename it over the old one
    const fh = await fs.create('/config.lock', 0o644)
    const bytes = Buffer.from('new\n')
    await fs.write(fh, bytes, bytes.byteLength, 0)
    await fs.flush(fh)
    gated.arm()
    const renaming = fs.rename('/config.lock', '/config')
    await gated.reached
    // the rename waits in its lookup of the old name; the last close queues the commit now
    await fs.release(fh)
    await new Promise(resolve => setTimeout(resolve, 200))
    gated.open()
    await renaming
    assert.equal(await textOf(fs, '/config'), 'new\n', 'the mount shows the new version under the new name')
    await fs.close()
    assert.equal(await replica.lookup('/config.lock'), undefined, 'the old name is gone from the namespace')
    const config = await replica.lookup('/config')
    assert.equal(config?.type, 'file')
    assert.equal(config?.type === 'file' ? config.size : -1, 4)
  })

  it('a rename waits for a commit under way, then moves what it committed', async t => {
    const { fs, replica } = await setup(t, '/never')
    await writeFile(fs, '/a.lock', 'one\n')
    // an fsync commits now; the rename right behind it must see the committed file
    const syncing = fs.fsync(undefined, '/a.lock')
    await fs.rename('/a.lock', '/a')
    await syncing
    await fs.close()
    assert.equal(await replica.lookup('/a.lock'), undefined)
    const a = await replica.lookup('/a')
    assert.equal(a?.type === 'file' ? a.size : -1, 4)
  })
})

describe('a listing racing a background commit', () => {
  it('a file whose commit ends while its directory is listed is in the listing', async t => {
    const { fs, replica, gated } = await setup(t, '/d', 'list')
    await fs.mkdir('/d', 0o755)
    const fh = await fs.create('/d/x', 0o644)
    await fs.write(fh, Buffer.from('x'), 1, 0)
    await fs.flush(fh)
    await fs.release(fh)
    // the namespace is listed before /d/x is committed; the commit ends (and /d/x leaves the staged files) before the answer is used
    gated.arm()
    const listing = fs.readdir('/d')
    await gated.reached
    await fs.fsync(undefined, '/d/x')
    await new Promise(resolve => setTimeout(resolve, 200))
    gated.open()
    assert.deepEqual(await listing, ['.', '..', 'x'])
    assert.equal((await replica.lookup('/d/x'))?.type, 'file')
  })
})

describe('a save by rename over a file, before the new version is committed', () => {
  it('other nodes see the old version at the path until the new one replaces it, never no file; one written there meanwhile is kept beside it', async t => {
    const { fs, replica } = await setup(t, '/never')
    await committedFile(fs, '/f', 'old\n')
    const old = await replica.lookup('/f')
    assert.ok(old?.type === 'file')
    // an editor's save: the new version written to a temporary file, renamed over the old one, not yet committed (still open)
    const fh = await fs.create('/f.tmp', 0o644)
    await fs.write(fh, Buffer.from('new\n'), 4, 0)
    await fs.flush(fh)
    await fs.rename('/f.tmp', '/f')
    assert.equal(await textOf(fs, '/f'), 'new\n', 'the mount shows the new version at once')
    const between = await replica.lookup('/f')
    assert.ok(between?.type === 'file' && between.cid === old.cid, 'the namespace (what other nodes see) still has the old version at /f, not nothing')
    assert.equal(await replica.lookup('/f.tmp'), undefined, 'and nothing at the temporary name')

    // meanwhile another node, which had the old version, writes its own at /f
    const peer = await peerReplica({ now: Date.now() })
    defer(t, async () => { await peer.close() })
    await pullInto(peer, replica)
    await peer.putFile('/f', file('theirs'))
    await pullInto(replica, peer)
    await fs.release(fh)
    await fs.close()
    const versions = [await replica.lookup('/f'), ...(await replica.conflicts()).map(c => ({ type: 'file', cid: c.cid }))]
    const cids = versions.map(v => v?.type === 'file' ? v.cid : undefined).sort()
    assert.equal(cids.length, 2, 'both versions: ours and the one written meanwhile (a conflict)')
    assert.ok(cids.includes(file('theirs').cid), 'theirs is kept')
    assert.ok(!cids.includes(old.cid), 'the old version is replaced')
  })

  it('renamed on before its commit, the file takes the old version of neither name with it', async t => {
    const { fs, replica } = await setup(t, '/never')
    await committedFile(fs, '/f', 'old f\n')
    await committedFile(fs, '/g', 'the g that was\n')
    const g = await replica.lookup('/g')
    const fh = await fs.create('/f.tmp', 0o644)
    await fs.write(fh, Buffer.from('new\n'), 4, 0)
    await fs.flush(fh)
    await fs.rename('/f.tmp', '/f')
    await fs.rename('/f', '/g')
    assert.equal(await replica.lookup('/f'), undefined, 'f was renamed away')
    const between = await replica.lookup('/g')
    assert.ok(between?.type === 'file' && g?.type === 'file' && between.cid === g.cid, 'g keeps its own version until the commit, not the old f')
    assert.equal(await textOf(fs, '/g'), 'new\n')
    await fs.release(fh)
    await fs.close()
    const after = await replica.lookup('/g')
    assert.ok(after?.type === 'file' && after.size === 4, 'the new version at /g')
    assert.deepEqual(await replica.conflicts(), [])
    assert.equal(await replica.lookup('/f'), undefined)
  })

  it('with no other write, the commit replaces the old version: one file, no conflict', async t => {
    const { fs, replica } = await setup(t, '/never')
    await committedFile(fs, '/g', 'old\n')
    const fh = await fs.create('/g.tmp', 0o644)
    await fs.write(fh, Buffer.from('newer\n'), 6, 0)
    await fs.flush(fh)
    await fs.rename('/g.tmp', '/g')
    await fs.release(fh)
    await fs.close()
    const g = await replica.lookup('/g')
    assert.ok(g?.type === 'file' && g.size === 6, 'the new version at /g')
    assert.deepEqual(await replica.conflicts(), [])
    assert.equal(await replica.lookup('/g.tmp'), undefined)
  })
})

/** Every version a replica holds at `path`: the one shown and its conflict copies' (content CIDs, sorted). */
async function versionsAt (replica: Replica, path: string): Promise<string[]> {
  const shown = await replica.lookup(path)
  const copies = (await replica.conflicts()).filter(c => c.path === path).map(c => c.cid)
  return [...(shown?.type === 'file' ? [shown.cid] : []), ...copies].sort()
}

describe('a save by rename over a file that another node changed since the save began', () => {
  /** `/f` committed here and known to a second replica, which is returned. */
  async function shared (t: CleanupContext, fs: ShoalFilesystem, replica: Replica): Promise<Replica> {
    await committedFile(fs, '/f', 'old\n')
    const peer = await peerReplica({ now: Date.now() })
    defer(t, async () => { await peer.close() })
    await pullInto(peer, replica)
    return peer
  }

  /** A save of `text` by rename, committed first (vim's way): `/f.tmp` committed, renamed over `/f`. Its CID. */
  async function savedOver (fs: ShoalFilesystem, replica: Replica, text: string): Promise<string> {
    await committedFile(fs, '/f.tmp', text)
    const made = await replica.lookup('/f.tmp')
    assert.ok(made?.type === 'file')
    await fs.rename('/f.tmp', '/f')
    return made.cid
  }

  /** `/f.tmp` written here ('ours', open, not committed) while the second replica's `/f` ('theirs') arrives: its handle. */
  async function oursWhileTheirsArrives (fs: ShoalFilesystem, replica: Replica, peer: Replica): Promise<number> {
    const fh = await fs.create('/f.tmp', 0o644)
    await fs.write(fh, Buffer.from('ours\n'), 5, 0)
    await fs.flush(fh)
    await peer.putFile('/f', file('theirs'))
    await pullInto(replica, peer)
    return fh
  }

  it('committed first (fsync, then mv: vim, rsync, git): a version the other node wrote after the temporary file was made is kept beside the new one', async t => {
    const { fs, replica } = await setup(t, '/never')
    const peer = await shared(t, fs, replica)
    await committedFile(fs, '/f.tmp', 'ours\n')
    const ours = await replica.lookup('/f.tmp')
    await peer.putFile('/f', file('theirs'))
    await pullInto(replica, peer)
    await fs.rename('/f.tmp', '/f')
    await fs.close()
    assert.ok(ours?.type === 'file')
    assert.deepEqual(await versionsAt(replica, '/f'), [ours.cid, file('theirs').cid].sort(), 'both: theirs is not lost, ours is there')
    assert.equal(await replica.lookup('/f.tmp'), undefined)
  })

  it('committed first: a version this node had when the temporary file was made is replaced, no conflict', async t => {
    const { fs, replica } = await setup(t, '/never')
    const peer = await shared(t, fs, replica)
    await peer.putFile('/f', file('theirs'))
    await pullInto(replica, peer)
    const ours = await savedOver(fs, replica, 'ours\n')
    await fs.close()
    assert.deepEqual(await versionsAt(replica, '/f'), [ours])
    assert.deepEqual(await replica.conflicts(), [])
  })

  it('not committed yet (sed -i): a version the other node wrote between the temporary file\'s making and the rename is kept beside the new one', async t => {
    const { fs, replica } = await setup(t, '/never')
    const peer = await shared(t, fs, replica)
    const fh = await oursWhileTheirsArrives(fs, replica, peer)
    await fs.rename('/f.tmp', '/f')
    const between = await replica.lookup('/f')
    assert.ok(between?.type === 'file' && between.cid === file('theirs').cid, 'theirs stays at /f until the commit')
    await fs.release(fh)
    await fs.close()
    const versions = await versionsAt(replica, '/f')
    assert.equal(versions.length, 2, 'both versions: ours and theirs')
    assert.ok(versions.includes(file('theirs').cid), 'theirs is kept')
  })

  it('renamed on before its commit (f.tmp → f → g), the version kept beside it at f stays at f; g ends with ours alone', async t => {
    const { fs, replica } = await setup(t, '/never')
    const peer = await shared(t, fs, replica)
    await committedFile(fs, '/g', 'gee\n')
    const gee = await replica.lookup('/g')
    await pullInto(peer, replica)
    const fh = await oursWhileTheirsArrives(fs, replica, peer)
    await fs.rename('/f.tmp', '/f')
    await fs.rename('/f', '/g')
    const between = await replica.lookup('/g')
    assert.ok(between?.type === 'file' && between.cid !== file('theirs').cid, 'theirs is not moved to /g')
    await fs.release(fh)
    await fs.close()
    assert.deepEqual(await versionsAt(replica, '/f'), [file('theirs').cid], 'theirs stays where it was written')
    const g = await versionsAt(replica, '/g')
    assert.ok(gee?.type === 'file')
    assert.equal(g.length, 1, 'g: one version')
    assert.ok(g[0] !== gee.cid && g[0] !== file('theirs').cid, 'ours, which replaced the g that was')
  })

  it('the note of a file made here moves with its directory: a version another node writes at the new path since is kept', async t => {
    const { fs, replica } = await setup(t, '/never')
    const peer = await shared(t, fs, replica)
    await fs.mkdir('/d', 0o755)
    await committedFile(fs, '/d/f', 'old\n')
    await committedFile(fs, '/d/f.tmp', 'ours\n')
    const ours = await replica.lookup('/d/f.tmp')
    await fs.rename('/d', '/e')
    await pullInto(peer, replica)
    await peer.putFile('/e/f', file('theirs'))
    await pullInto(replica, peer)
    await fs.rename('/e/f.tmp', '/e/f')
    await fs.close()
    assert.ok(ours?.type === 'file')
    assert.deepEqual(await versionsAt(replica, '/e/f'), [ours.cid, file('theirs').cid].sort())
  })

  it('no note is left at a path a file left (its directory renamed, or it was removed uncommitted): a file of another node renamed there replaces as before', async t => {
    const { fs, replica } = await setup(t, '/never')
    const peer = await shared(t, fs, replica)
    await fs.mkdir('/d', 0o755)
    await committedFile(fs, '/d/x', 'made here\n')
    await fs.rename('/d', '/e')
    const fh = await fs.create('/x', 0o644)
    await fs.write(fh, Buffer.from('tmp\n'), 4, 0)
    await fs.unlink('/x')
    await fs.release(fh)
    await pullInto(peer, replica)
    await peer.putFile('/d/x', file('px'))
    await peer.putFile('/d/y', file('py'))
    await peer.putFile('/x', file('px'))
    await peer.putFile('/y', file('py'))
    await pullInto(replica, peer)
    await fs.rename('/d/x', '/d/y')
    await fs.rename('/x', '/y')
    await fs.close()
    assert.deepEqual(await versionsAt(replica, '/d/y'), [file('px').cid])
    assert.deepEqual(await versionsAt(replica, '/y'), [file('px').cid])
    assert.deepEqual(await replica.conflicts(), [])
  })

  it('a rename onto a name another node takes while the rename looks it up keeps both (no EEXIST, as rsync got)', async t => {
    const { fs, replica, gated } = await setup(t, '/r14')
    const peer = await shared(t, fs, replica)
    await committedFile(fs, '/.r14.tmp', 'ours\n')
    const ours = await replica.lookup('/.r14.tmp')
    gated.arm()
    const renaming = fs.rename('/.r14.tmp', '/r14')
    // the rename found no /r14; the other node's arrives before it moves the file
    await gated.reached
    await peer.putFile('/r14', file('theirs'))
    await pullInto(replica, peer)
    gated.open()
    await renaming
    await fs.close()
    assert.ok(ours?.type === 'file')
    assert.deepEqual(await versionsAt(replica, '/r14'), [ours.cid, file('theirs').cid].sort())
    assert.equal(await replica.lookup('/.r14.tmp'), undefined)
  })

  it('a file open here whose committed version another node removed, renamed over a file, puts its bytes there (the target is not just removed)', async t => {
    const { fs, replica } = await setup(t, '/never')
    const peer = await shared(t, fs, replica)
    await committedFile(fs, '/g', 'kept\n')
    // written, committed (fsync) and still open: the mount keeps it staged
    const fh = await fs.create('/h', 0o644)
    await fs.write(fh, Buffer.from('still open\n'), 11, 0)
    await fs.fsync(fh, '/h')
    const h = await replica.lookup('/h')
    await pullInto(peer, replica)
    await peer.remove('/h')
    await pullInto(replica, peer)
    assert.equal(await replica.lookup('/h'), undefined, 'removed by the other node')
    await fs.rename('/h', '/g')
    await fs.release(fh)
    await fs.close()
    assert.ok(h?.type === 'file')
    const g = await replica.lookup('/g')
    assert.ok(g?.type === 'file' && g.cid === h.cid, 'the renamed file\'s bytes are at /g')
    assert.equal(await replica.lookup('/h'), undefined)
    assert.deepEqual(await replica.conflicts(), [])
  })

  it('a file made here and renamed over its own earlier save replaces it, whatever arrived for other paths meanwhile', async t => {
    const { fs, replica } = await setup(t, '/never')
    const peer = await shared(t, fs, replica)
    await savedOver(fs, replica, 'first\n')
    await peer.putFile('/other', file('elsewhere'))
    await pullInto(replica, peer)
    const second = await savedOver(fs, replica, 'second\n')
    await fs.close()
    assert.deepEqual(await versionsAt(replica, '/f'), [second])
    assert.deepEqual(await replica.conflicts(), [])
  })
})

describe('a directory\'s mode and time through the mount', () => {
  it('chmod and utime of a directory change it in the namespace, as tar and rsync expect; its children stay; the root is left as it is', async t => {
    const { fs, replica } = await setup(t, '/never')
    // what tar does: the directory made 0700, filled, then given its mode and time
    await fs.mkdir('/d', 0o700)
    await committedFile(fs, '/d/x', 'x\n')
    await fs.chmod('/d', 0o755)
    await fs.utimens('/d', 1_600_000_000_000)
    assert.equal((await fs.getattr('/d')).mode & 0o7777, 0o755)
    assert.equal((await fs.getattr('/d')).mtime, 1_600_000_000_000)
    const d = await replica.stat('/d')
    assert.ok(d.type === 'dir' && d.mode === 0o755 && d.mtime === 1_600_000_000_000, 'in the namespace: what other nodes see')
    assert.deepEqual((await replica.list('/d')).map(e => e.name), ['x'], 'its file stays')
    // another node gets the change, and the directory's content with it
    const peer = await peerReplica({ now: Date.now() })
    defer(t, async () => { await peer.close() })
    await pullInto(peer, replica)
    const there = await peer.stat('/d')
    assert.ok(there.type === 'dir' && there.mode === 0o755)
    assert.deepEqual((await peer.list('/d')).map(e => e.name), ['x'])
    // the root has no version to change: accepted, nothing written
    await fs.chmod('/', 0o700)
    assert.equal((await fs.getattr('/')).mode & 0o7777, 0o755)
  })
})
