/**
 * An add to a path that another node writes while the add's bytes are still
 * uploading, on real daemons: both versions stay, one shown and the other a
 * conflict copy, on both nodes. Before, the add replaced whatever version was
 * visible when it landed, so the other node's version, which arrived here
 * during the upload and which the user of this add never saw, was dropped
 * without a copy. An add of a path whose version the user had (visible when
 * the add began) still replaces it.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '../helpers/temp.js'
import { eventually, initSwarm, shoalJson, shoalOk, startDaemon, type TestDaemon } from '../helpers/cli.js'

const TEST = { timeout: 120_000 }

interface Conflict { path: string, copy: string, cid: string }

/** POST an add of `first` then, once `between` resolves, `rest`, to `path` on `d`'s API; its answer's CID. */
async function slowAdd (d: TestDaemon, path: string, first: Buffer, rest: Buffer, between: () => Promise<void>): Promise<string> {
  const url = new URL(`/api/v0/add?to=${encodeURIComponent(path)}`, d.url)
  return await new Promise<string>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/octet-stream' } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        if (res.statusCode !== 200) reject(new Error(`add answered ${String(res.statusCode)}: ${body}`))
        else resolve((JSON.parse(body) as { cid: string }).cid)
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.write(first)
    between().then(() => { req.end(rest) }, err => { req.destroy(); reject(err) })
  })
}

/** The CID shown at `path` on `d`, undefined when there is none. */
async function shownAt (d: TestDaemon, path: string): Promise<string | undefined> {
  try {
    return (await shoalJson<{ cid: string }>(d.repo, ['stat', path])).cid
  } catch {
    return undefined
  }
}

describe('an add racing another node\'s write of the same path', () => {
  it('keeps both versions when the other one arrived during the upload; replaces the version the add began from', TEST, async t => {
    const dir = await tempDir(t, 'shoal-add-race-')
    const [repoA, repoB] = await initSwarm(dir, ['a', 'b'])
    const a = await startDaemon(t, repoA)
    const b = await startDaemon(t, repoB)
    const id = await shoalJson<{ addresses: string[] }>(b.repo, ['id'])
    await shoalOk(a.repo, ['peers', 'connect', id.addresses[0]])

    // b writes /race.bin while a's add of the same path is uploading
    const fromB = randomBytes(50_000)
    const fileB = join(dir, 'b.bin')
    await writeFile(fileB, fromB)
    const fromA = randomBytes(400_000)
    let cidB = ''
    const cidA = await slowAdd(a, '/race.bin', fromA.subarray(0, 100_000), fromA.subarray(100_000), async () => {
      cidB = (await shoalJson<{ cid: string }>(b.repo, ['add', fileB, '--to', '/race.bin'])).cid
      await eventually('b\'s version seen on a', async () => await shownAt(a, '/race.bin') === cidB)
    })
    assert.notEqual(cidA, cidB)
    for (const d of [a, b]) {
      await eventually('both versions on each node', async () => {
        const shown = await shownAt(d, '/race.bin')
        const copies = (await shoalJson<Conflict[]>(d.repo, ['conflicts'])).filter(c => c.path === '/race.bin').map(c => c.cid)
        return shown !== undefined && [shown, ...copies].sort().join() === [cidA, cidB].sort().join()
      })
    }
    const conflict = (await shoalJson<Conflict[]>(a.repo, ['conflicts'])).find(c => c.path === '/race.bin') as Conflict
    const other = conflict.cid === cidA ? fromA : fromB
    assert.ok((await shoalOk(a.repo, ['cat', conflict.copy])).equals(other), 'the conflict copy reads the other version')
    // said where a user looks: status, and stat of the copy
    assert.match((await shoalOk(a.repo, ['status'])).toString(), /^conflicts: 1 conflict copy in the namespace/m)
    assert.match((await shoalOk(a.repo, ['stat', conflict.copy])).toString(), /conflict copy of \/race\.bin: keep it/)

    // a version the add began from is replaced, as before: no conflict
    const fileA2 = join(dir, 'a2.bin')
    const again = randomBytes(30_000)
    await writeFile(fileA2, again)
    await eventually('b sees the conflict', async () => (await shoalJson<Conflict[]>(b.repo, ['conflicts'])).length === 1)
    await shoalOk(b.repo, ['rm', conflict.copy])
    await eventually('the copy removed on a', async () => (await shoalJson<Conflict[]>(a.repo, ['conflicts'])).length === 0)
    const cidA2 = (await shoalJson<{ cid: string }>(a.repo, ['add', fileA2, '--to', '/race.bin'])).cid
    assert.equal(await shownAt(a, '/race.bin'), cidA2)
    assert.deepEqual(await shoalJson<Conflict[]>(a.repo, ['conflicts']), [])
    assert.doesNotMatch((await shoalOk(a.repo, ['status'])).toString(), /^conflicts:/m)
    await eventually('b shows the new version, no conflict', async () => await shownAt(b, '/race.bin') === cidA2 && (await shoalJson<Conflict[]>(b.repo, ['conflicts'])).length === 0)
  })
})
