/**
 * Small defects a probe found, on one real daemon: each answer is one line
 * naming a typed error, with a non-zero exit for the CLI.
 *
 * - `shoal mv /j.bin /j.bin` exited 0 and printed nothing: as POSIX `mv`,
 *   it now says the two are the same file and exits 1 (also `mv /j.bin /`,
 *   which names the same path); nothing changes.
 * - `shoal mkdir ""` said "arg: is required": now that the path is empty.
 * - The gateway's `GET /ipfs/` (no CID) answered with the multibase
 *   decoder's words about `\u0000`: now "missing CID".
 * - The gateway ignored `Range: bytes= 1-2` (space after `=`) and sent the
 *   whole file: optional whitespace is accepted, as common servers do.
 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes, assertBytesEqual } from '../helpers/bytes.js'
import { tempDir } from '../helpers/temp.js'
import { lines, runShoal, shoalJson, shoalOk, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'
import { call, gatewayOf } from '../node/gateway/helpers.js'

describe('probe defects on a real daemon', () => {
  const ctx = suiteContext()
  const TEST = { timeout: 60_000 }
  const data = randomBytes(1000, 41)
  let d: TestDaemon
  let cid: string
  let gw: string
  before(async () => {
    d = await startDaemon(ctx)
    const dir = await tempDir(ctx)
    await writeFile(join(dir, 'j.bin'), data)
    cid = (await shoalJson<{ cid: string }>(d.repo, ['add', join(dir, 'j.bin'), '--to', '/j.bin', '--pin', 'none'])).cid
    gw = await gatewayOf(d.repo)
  })

  it('mv onto itself: refused in one line (SameFileError), exit 1, nothing changed', TEST, async () => {
    for (const to of ['/j.bin', '/']) {
      const r = await runShoal(['--repo', d.repo, 'mv', '/j.bin', to])
      assert.equal(r.code, 1, `mv /j.bin ${to}: ${r.stderr}`)
      assert.deepEqual(lines(r.stderr), ["shoal: '/j.bin' and '/j.bin' are the same file (SameFileError)"], `mv /j.bin ${to}`)
      assert.equal(r.stdout.toString(), '')
    }
    const json = await runShoal(['--repo', d.repo, '--json', 'mv', '/j.bin', '/j.bin'])
    assert.equal(json.code, 1)
    assert.equal(JSON.parse(json.stderr).error.name, 'SameFileError')
    assertBytesEqual(await shoalOk(d.repo, ['cat', '/j.bin']), data, 'the file is where it was')
    assert.deepEqual((await shoalJson<Array<{ name: string }>>(d.repo, ['ls', '/'])).map(e => e.name), ['j.bin'])
  })

  it('mkdir "": one line that says the path is empty, exit 1, nothing made', TEST, async () => {
    const empty = await runShoal(['--repo', d.repo, 'mkdir', ''])
    assert.equal(empty.code, 1, empty.stderr)
    assert.deepEqual(lines(empty.stderr), ['shoal: the path is empty: a namespace path starts with / (such as /photos) (InvalidPathError)'])
    assert.deepEqual((await shoalJson<unknown[]>(d.repo, ['ls', '/'])).length, 1, 'nothing made')
  })

  it('gateway /ipfs/ without a CID: InvalidCIDError "missing CID"', TEST, async () => {
    for (const path of ['/ipfs/', '/ipfs//x']) {
      const a = await call(`${gw}${path}`)
      assert.equal(a.status, 400, path)
      assert.deepEqual(a.json().error, { name: 'InvalidCIDError', message: 'missing CID: ask for /ipfs/{cid}[/path]' }, path)
    }
  })

  it('gateway Range with optional whitespace: a partial answer, as without it', TEST, async () => {
    for (const range of ['bytes= 1-2', 'bytes=1 - 2', 'bytes=\t1-2']) {
      const a = await call(`${gw}/ipfs/${cid}`, { headers: { range } })
      assert.equal(a.status, 206, range)
      assert.equal(a.headers.get('content-range'), `bytes 1-2/${data.byteLength}`, range)
      assertBytesEqual(a.body, data.subarray(1, 3), range)
    }
    // several ranges, whitespace and all: one part each (multipart/byteranges)
    const several = await call(`${gw}/ipfs/${cid}`, { headers: { range: 'bytes= 1-2, 4-5' } })
    assert.equal(several.status, 206)
    assert.match(several.headers.get('content-type') ?? '', /^multipart\/byteranges; boundary=/)
  })
})
