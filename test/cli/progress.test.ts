/**
 * Progress of long operations: when the CLI draws bars (a terminal stderr,
 * never under --json, --progress/--no-progress), how it reads the API's
 * progress stream, and the stream itself on real daemons — a repair pass
 * over files coded in a two-node swarm, a scrub, garbage collections that
 * mark and sweep hundreds of blocks, a CAR import whose binding fails after
 * its progress began — ending with the result (or the error) the call
 * answers without progress, which stays exactly as it was.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ApiError, BrokenStreamError, readProgressStream } from '../../cli/client.js'
import { fileBody } from '../../cli/local-file.js'
import { formatMeterLine, meter, PLAIN_LINE_MS, progressMode, RATE_SAMPLE_MS, RateWindow } from '../../cli/progress.js'
import { directory, rawBlock, writeCarFile } from '../helpers/dags.js'
import { randomBytes } from '../helpers/bytes.js'
import { tempDir } from '../helpers/temp.js'
import { initSwarm, lines, runShoal, shoalJson, shoalOk, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'
import type { ProgressLine, ProgressUpdate } from '../../node/api/progress.js'

const TEST = { timeout: 180_000 }

describe('when the CLI draws progress', () => {
  it('on a terminal stderr by default; elsewhere only with --progress; never under --json or with --no-progress', () => {
    const tty = { isTTY: true, write: () => true }
    const pipe = { isTTY: false, write: () => true }
    assert.deepEqual(progressMode({ json: false }, tty), { tty: true })
    assert.equal(progressMode({ json: false }, pipe), undefined)
    assert.deepEqual(progressMode({ json: false, progress: true }, pipe), { tty: false }, 'forced: plain lines, now and then')
    assert.equal(progressMode({ json: false, progress: false }, tty), undefined)
    assert.equal(progressMode({ json: true }, tty), undefined)
    assert.equal(progressMode({ json: true, progress: true }, tty), undefined, '--json wins over --progress')
    assert.equal(progressMode({ json: true, progress: true }, pipe), undefined)
  })

  it('a known total shows percent, counts, rate and ETA; an unknown one a counter and its rate', () => {
    const MiB = 1024 * 1024
    assert.equal(formatMeterLine({ label: 'get x', unit: { bytes: true }, done: 25 * MiB, total: 100 * MiB, rate: 5 * MiB, elapsed: 5, note: '1/4 files' }),
      'get x 25% | 25.0 MiB / 100.0 MiB | 5.0 MiB/s | ETA 0:15 | 1/4 files')
    assert.equal(formatMeterLine({ label: 'repair', unit: { bytes: false, noun: 'files' }, done: 3, total: 3, rate: 0, elapsed: 1 }),
      'repair 100% | 3 / 3 files | 0.0/s | ETA 0:00')
    assert.equal(formatMeterLine({ label: 'scrub', unit: { bytes: true }, done: 3 * MiB, rate: 1.5 * MiB, elapsed: 2, note: '4 blocks, 0 corrupt' }),
      'scrub 3.0 MiB | 1.5 MiB/s | 4 blocks, 0 corrupt')
    assert.equal(formatMeterLine({ label: 'gc: compacting', done: 0, rate: 0, elapsed: 75 }), 'gc: compacting | 1:15')
  })
})

describe('the rate of a meter', () => {
  it('falls when a transfer stalls: the last value counts as still true now', () => {
    const r = new RateWindow()
    for (let t = 0; t <= 2_000; t += 10) r.push(t, t * 1000) // 1,000,000 per second for 2 s
    assert.ok(Math.abs(r.rate(2_000) - 1_000_000) < 1_000, String(r.rate(2_000)))
    const stalled = [3_000, 5_000, 6_000, 20_000].map(now => r.rate(now))
    assert.ok(stalled.every((v, i) => i === 0 || v < stalled[i - 1]), `falls while nothing comes: ${stalled.join(', ')}`)
    assert.ok(stalled[0] < 1_000_000)
    assert.equal(stalled.at(-1), 0, 'nothing moved within the window: 0')
  })

  it('keeps a bounded number of samples however many chunks come', () => {
    const r = new RateWindow()
    // 8,000 chunks a second for 50 s: 400,000 pushes
    let max = 0
    for (let i = 0; i < 400_000; i++) {
      r.push(i / 8, i * 65_536)
      max = Math.max(max, r.size)
    }
    assert.ok(max <= 5_000 / RATE_SAMPLE_MS + 2, `samples held: at most ${max}`)
    assert.ok(Math.abs(r.rate(50_000) - 8_000 * 65_536) / (8_000 * 65_536) < 0.01, String(r.rate(50_000)))
  })

  it('off a terminal, --progress writes the first line, then a line only after a while, and always the last', () => {
    const written: string[] = []
    const m = meter({ json: false, progress: true }, { label: 'get x', unit: { bytes: true }, total: 1000 }, { isTTY: false, write: text => { written.push(text); return true } })
    for (let i = 1; i <= 1000; i++) m.add(1)
    // all within far less than PLAIN_LINE_MS of the start
    m.stop()
    m.stop()
    assert.equal(written.length, 2, `${PLAIN_LINE_MS} ms between lines: ${JSON.stringify(written)}`)
    assert.match(written[0], /^get x \[ +\] 0% \| 0 B \/ 1000 B/)
    assert.match(written[1], /^get x \[=+\] 100% \| 1000 B \/ 1000 B \| .* \| ETA 0:00\n$/)
  })
})

describe('reading a progress stream', () => {
  /** A stream of `text` cut into pieces of `size` bytes (lines and characters split between chunks). */
  function chunked (text: string, size: number): Readable {
    const bytes = Buffer.from(text)
    const parts: Buffer[] = []
    for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size))
    return Readable.from(parts)
  }

  it('gives every progress line in order and resolves with the result, whatever the chunking', async () => {
    const text = [{ progress: { n: 1, name: 'é→✓' } }, { progress: { n: 2 } }, { result: { ok: true, name: 'ünï' } }].map(l => JSON.stringify(l) + '\n').join('')
    for (const size of [1, 2, 3, 7, 1000]) {
      const seen: unknown[] = []
      const result = await readProgressStream(chunked(text, size), p => { seen.push(p) })
      assert.deepEqual(seen, [{ n: 1, name: 'é→✓' }, { n: 2 }], `chunks of ${size}`)
      assert.deepEqual(result, { ok: true, name: 'ünï' })
    }
    assert.deepEqual(await readProgressStream(chunked('{"result":7}', 4), () => {}), 7, 'a last line without its newline')
  })

  it('an error line is the daemon\'s error; a stream cut or garbled is a BrokenStreamError', async () => {
    await assert.rejects(readProgressStream(chunked('{"progress":{}}\n{"error":{"name":"InvalidCARError","message":"bad name"}}\n', 5), () => {}),
      (err: any) => err instanceof ApiError && err.name === 'InvalidCARError' && err.message === 'bad name')
    await assert.rejects(readProgressStream(chunked('{"progress":{}}\n', 5), () => {}), (err: any) => err instanceof BrokenStreamError && /ended before its result/.test(err.message))
    await assert.rejects(readProgressStream(chunked('{"progress":{}}\nnot json\n', 5), () => {}), BrokenStreamError)
    await assert.rejects(readProgressStream(chunked('{"surprise":1}\n', 5), () => {}), BrokenStreamError)
    // the bound counts bytes: 40 two-byte characters are 80 bytes
    const wide = JSON.stringify({ progress: 'é'.repeat(40) }) + '\n{"result":1}\n'
    await assert.rejects(readProgressStream(chunked(wide, 7), () => {}, 64), (err: any) => err instanceof BrokenStreamError && /longer than 64 bytes/.test(err.message))
    assert.equal(await readProgressStream(chunked(wide, 7), () => {}, 128), 1)
    await assert.rejects(readProgressStream(chunked('x'.repeat(100), 7), () => {}, 64), BrokenStreamError, 'a line not ended yet counts too')
    const cut = new Readable({ read () { this.push('{"progress":{}}\n'); this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })) } })
    await assert.rejects(readProgressStream(cut, () => {}), (err: any) => err instanceof BrokenStreamError && /cut before its result \(ECONNRESET\)/.test(err.message))
  })
})

describe('progress streams of a real node', () => {
  const ctx = suiteContext()
  let a: TestDaemon
  let b: TestDaemon
  let dir: string

  before(async () => {
    dir = await tempDir(ctx, 'shoal-progress-')
    const repos = await initSwarm(dir, ['a', 'b'])
    ;[a, b] = await Promise.all(repos.map(async r => await startDaemon(ctx, r)))
    await shoalOk(b.repo, ['peers', 'connect', (await shoalJson(a.repo, ['id'])).addresses[0]])
  })

  /** POST to `a`'s API; the answer's status, type and body text. */
  async function post (path: string, body?: Uint8Array): Promise<{ status: number, type: string, text: string }> {
    const res = await fetch(new URL(path, a.url), { method: 'POST', headers: { authorization: `Bearer ${a.token}` }, body, signal: AbortSignal.timeout(120_000) })
    return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() }
  }

  /** The lines of an NDJSON answer, checked to be one, ending with its result or error. */
  function ndjson (answer: { status: number, type: string, text: string }): Array<ProgressLine<any>> {
    assert.equal(answer.status, 200, answer.text)
    assert.match(answer.type, /^application\/x-ndjson/)
    assert.ok(answer.text.endsWith('\n'))
    const parsed = lines(answer.text).map(l => JSON.parse(l) as ProgressLine<any>)
    assert.ok(parsed.slice(0, -1).every(l => 'progress' in l), 'progress lines, then one last line')
    return parsed
  }

  function updates (parsed: Array<ProgressLine<any>>, phase: ProgressUpdate['phase']): ProgressUpdate[] {
    return parsed.flatMap(l => 'progress' in l && l.progress.phase === phase ? [l.progress] : [])
  }

  /** True when every value of `key` in `list` is at least the one before. */
  function nonDecreasing (list: any[], key: string): boolean {
    return list.every((u, i) => i === 0 || u[key] >= list[i - 1][key])
  }

  it('repair with scrub: scrub counts, then the files of the pass one by one, then the result', TEST, async () => {
    // three files coded replicas:2 (one manifest each) over the two nodes
    for (const i of [1, 2, 3]) {
      await writeFile(join(dir, `r${i}.bin`), randomBytes(200_000 + i, 40 + i))
      await shoalOk(a.repo, ['add', join(dir, `r${i}.bin`), '--to', `/coded/r${i}.bin`, '--pin', 'replicas:2', '--wait'])
    }
    const plain = JSON.parse((await post('/api/v0/repair?wait=true')).text)
    assert.equal(plain.manifests, 3, 'without progress: the JSON result as always')

    const parsed = ndjson(await post('/api/v0/repair?scrub=true&progress=true'))
    const last = parsed.at(-1) as { result: any }
    assert.ok('result' in last, JSON.stringify(last))
    const scrub = updates(parsed, 'scrub') as Array<{ blocks: number, bytes: number, corrupt: number }>
    assert.deepEqual(scrub[0], { phase: 'scrub', blocks: 0, bytes: 0, corrupt: 0 }, 'the scrub says it starts')
    assert.ok(nonDecreasing(scrub, 'bytes') && nonDecreasing(scrub, 'blocks'))
    assert.deepEqual(scrub.at(-1), { phase: 'scrub', blocks: last.result.scrub.blocks, bytes: last.result.scrub.bytes, corrupt: 0 }, 'and ends at the totals of its result')
    assert.ok(last.result.scrub.blocks > 0)
    const repair = updates(parsed, 'repair') as Array<{ manifests: number, total?: number }>
    assert.deepEqual(repair.map(u => [u.manifests, u.total]), [[0, undefined], [1, 3], [2, 3], [3, 3]], 'each file of the pass, counted up to the total')
    assert.equal(last.result.manifests, 3)
    const phases = parsed.flatMap(l => 'progress' in l ? [l.progress.phase] : [])
    assert.equal(phases.lastIndexOf('scrub') < phases.indexOf('repair'), true, 'the scrub first, then the pass')
  })

  it('gc: marking and sweeping counted in steps up to the result; a bad progress value is refused as any bad query', TEST, async () => {
    // 600 one-block files kept only here (no parity or replicas for gc to keep): marking passes 256 and 512 files
    for (let i = 0; i < 600; i++) {
      const res = await fetch(new URL(`/api/v0/add?to=/many/f${i}.txt&pin=none`, a.url), { method: 'POST', headers: { authorization: `Bearer ${a.token}` }, body: Buffer.from(`small file ${i}`), signal: AbortSignal.timeout(30_000) })
      assert.equal(res.status, 200, await res.text())
    }
    const marked = ndjson(await post('/api/v0/gc?progress=true'))
    const mark = updates(marked, 'gc').filter((u: any) => u.step === 'mark') as Array<{ files: number, marked: number }>
    assert.deepEqual(mark.slice(0, 2).map(u => u.files), [256, 512])
    assert.ok(mark.at(-1)!.files >= 603, 'the last mark counts every file')
    assert.ok(nonDecreasing(mark, 'files') && nonDecreasing(mark, 'marked'))
    assert.equal(mark.at(-1)!.marked, (marked.at(-1) as { result: any }).result.marked, 'blocks marked: the result\'s')

    // a client that goes away after the first line: the daemon goes on serving, and gc is free for the next caller
    const gone = new AbortController()
    const res = await fetch(new URL('/api/v0/gc?progress=true', a.url), { method: 'POST', headers: { authorization: `Bearer ${a.token}` }, signal: gone.signal })
    assert.equal(res.status, 200)
    const first = await res.body!.getReader().read()
    assert.match(Buffer.from(first.value ?? []).toString(), /^\{"progress":\{"phase":"gc"/)
    gone.abort()
    const id = await fetch(new URL('/api/v0/id', a.url), { headers: { authorization: `Bearer ${a.token}` }, signal: AbortSignal.timeout(30_000) })
    assert.equal(id.status, 200, await id.text())
    assert.ok('result' in (ndjson(await post('/api/v0/gc?progress=true')).at(-1) as object), 'the next gc runs to its result')

    await shoalOk(a.repo, ['rm', '-r', '/many'])
    const swept = ndjson(await post('/api/v0/gc?progress=true'))
    const result = (swept.at(-1) as { result: any }).result
    assert.ok(result.removed >= 600, JSON.stringify(result))
    const sweep = updates(swept, 'gc').filter((u: any) => u.step === 'sweep') as Array<{ checked: number, total: number, removed: number }>
    assert.deepEqual(sweep.slice(0, 3).map(u => u.checked), [0, 256, 512], 'from nothing, in steps')
    assert.ok(sweep.every(u => u.total === sweep[0].total) && nonDecreasing(sweep, 'checked') && nonDecreasing(sweep, 'removed'))
    assert.deepEqual(sweep.at(-1), { phase: 'gc', step: 'sweep', checked: sweep[0].total, total: sweep[0].total, removed: result.removed }, 'the sweep ends at its total and the result\'s removals')
    assert.deepEqual(updates(swept, 'gc').at(-1), { phase: 'gc', step: 'compact' }, 'then the space is given back')

    const refused = await post('/api/v0/gc?progress=maybe')
    assert.equal(refused.status, 400)
    assert.equal(JSON.parse(refused.text).error.name, 'InvalidArgumentError')
  })

  it('the CLI draws bars only when asked off a terminal, and keeps stdout and --json as they were', TEST, async () => {
    const forced = await runShoal(['--repo', a.repo, '--progress', 'repair', '--wait'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.match(forced.stderr, /^repair \[=+\] 100% \| 3 \/ 3 files \| .* \| ETA 0:00 \| 0 shards rebuilt$/m, forced.stderr)
    assert.match(forced.stdout.toString(), /^3 pinned files, /)

    const gc = await runShoal(['--repo', a.repo, '--progress', 'gc'])
    assert.equal(gc.code, 0, gc.stderr)
    assert.match(gc.stderr, /^gc: marking \d+ files \| .* blocks to keep$/m)
    assert.match(gc.stdout.toString(), /^removed \d+ blocks/)

    for (const args of [['gc'], ['--no-progress', 'gc'], ['--json', 'gc'], ['--json', '--progress', 'gc'], ['--json', '--progress', 'repair', '--wait']]) {
      const r = await runShoal(['--repo', a.repo, ...args])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr`)
      if (args[0] === '--json') JSON.parse(r.stdout.toString())
    }
  })

  it('a file that cannot be read while it uploads fails the command with one line, with or without --progress, and the daemon goes on', TEST, async () => {
    // a directory where a file is expected: stat passes, every read fails (EISDIR)
    const notAFile = join(dir, 'not-a-car')
    await mkdir(notAFile, { recursive: true })
    for (const args of [['car', 'import', notAFile], ['--progress', 'car', 'import', notAFile], ['--json', 'car', 'import', notAFile]]) {
      const r = await runShoal(['--repo', a.repo, ...args], { timeoutMs: 60_000 })
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace')
      const said = lines(r.stderr).filter(l => l.startsWith('shoal:') || l.startsWith('{'))
      assert.equal(said.length, 1, r.stderr)
      if (args[0] === '--json') assert.equal(JSON.parse(said[0]).error.name, 'LocalReadError')
      else assert.equal(said[0], `shoal: cannot read ${notAFile}: it is a directory (LocalReadError)`)
      assert.equal(r.stdout.length, 0)
    }
    // the body of any upload: a read error is the stream's typed error, never an unhandled one
    const body = fileBody(notAFile)
    await assert.rejects(async () => { for await (const _ of body) {} }, { name: 'LocalReadError' })
    assert.equal((await runShoal(['--repo', a.repo, 'id'])).code, 0, 'the daemon still answers')
  })

  it('an error after the progress began is the last line, and the CLI\'s usual one-line error', TEST, async () => {
    // a CAR its checks refuse is refused before any progress, so it keeps its status: 2^20 paths from 22 blocks are
    // counted while the CAR is still staged (as a bad name is checked), and nothing is published
    const leaf = await rawBlock('x')
    let level = await directory([{ name: 'leaf.txt', block: leaf }])
    const blocks = [leaf, level]
    for (let i = 0; i < 20; i++) {
      level = await directory([{ name: 'a', block: level }, { name: 'b', block: level }])
      blocks.push(level)
    }
    const car = join(dir, 'evil.car')
    await writeCarFile(car, level, blocks.reverse())
    const bytes = new Uint8Array(await readFile(car))
    for (const query of ['to=/evil&progress=true', 'to=/evil']) {
      const refused = await post(`/api/v0/car/import?${query}`, bytes)
      assert.equal(refused.status, 413, refused.text)
      assert.match(refused.type, /^application\/json/)
      const error = JSON.parse(refused.text).error as { name: string, message: string }
      assert.equal(error.name, 'TooLargeError')
      assert.match(error.message, /more than \d+ entries .*nothing was imported$/)
    }
    // an error before any progress (a CAR that is not one) keeps its status with progress too
    const garbage = await post('/api/v0/car/import?progress=true', new TextEncoder().encode('not a car'))
    assert.equal(garbage.status, 422)
    assert.match(garbage.type, /^application\/json/)
    const refused = await runShoal(['--repo', a.repo, '--progress', 'car', 'import', car, '--to', '/evil'])
    assert.equal(refused.code, 1, refused.stderr)
    const refusedLines = lines(refused.stderr).filter(l => l.startsWith('shoal:'))
    assert.deepEqual(refusedLines, [lines(refused.stderr).at(-1)], 'one error line, the last thing said')
    assert.match(refusedLines[0], /^shoal: the CAR's trees hold more than \d+ entries .*\(TooLargeError\)$/)
    assert.equal((await runShoal(['--repo', a.repo, 'stat', '/evil'])).code, 1, 'nothing was bound')

    // binding fails after the CAR was checked and published: the root's default path holds a folder
    // (without --to there is no path to check before the import)
    const file = await rawBlock('taken')
    const top = await directory([{ name: 't.txt', block: file }])
    await shoalOk(a.repo, ['mkdir', '/imported'])
    await shoalOk(a.repo, ['mkdir', `/imported/${top.cid.toString()}`])
    const takenCar = join(dir, 'taken.car')
    await writeCarFile(takenCar, top, [top, file])
    const parsed = ndjson(await post('/api/v0/car/import?progress=true', new Uint8Array(await readFile(takenCar))))
    assert.deepEqual(updates(parsed, 'car').map((u: any) => u.step), ['checked', 'published'])
    const last = parsed.at(-1) as { error: { name: string, message: string } }
    assert.equal(last.error.name, 'AlreadyExistsError', JSON.stringify(last))
    assert.match(last.error.message, /exists/)

    const r = await runShoal(['--repo', a.repo, '--progress', 'car', 'import', takenCar])
    assert.equal(r.code, 1, r.stderr)
    const errLines = lines(r.stderr).filter(l => l.startsWith('shoal:'))
    assert.equal(errLines.length, 1, r.stderr)
    assert.match(errLines[0], /^shoal: \/imported\/\S+ exists and holds another tree: .*\(AlreadyExistsError\)$/)
    assert.equal(lines(r.stderr).at(-1), errLines[0], 'the error is the last thing said')
    assert.equal(r.stdout.length, 0)
    const json = await runShoal(['--repo', a.repo, '--json', 'car', 'import', takenCar])
    assert.equal(json.code, 1)
    assert.equal(JSON.parse(json.stderr).error.name, 'AlreadyExistsError')
    // what the bars said before the error: the whole upload, then the daemon's steps up to binding
    assert.match(r.stderr, /^car import: upload \[=+\] 100% \| \S+ \S*B \/ \S+ \S*B \| .* \| ETA 0:00$/m, r.stderr)
    assert.match(r.stderr, /^car import: binding roots 0 roots \| .* \| \d+ new blocks$/m, r.stderr)
  })
})
