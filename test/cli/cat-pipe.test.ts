/**
 * `shoal cat` into a pipe is written by the daemon itself
 * (node/api/caller-pipe.ts): the bytes are the file's, in order, and the
 * daemon's report counts no more than reached the pipe; a reader that goes
 * away (`| head`) ends the command quietly; a CLI killed mid-read leaves no
 * writer on its pipe (its reader sees the end); an error names its cause in
 * one line; a claim on a pipe the asker does not hold is answered in the
 * body, and nothing reaches that pipe; nor does anything reach a FIFO the
 * caller holds but may not write (an `O_PATH` descriptor, a read end),
 * though the daemon runs as root, nor a pipe of another user's process, or of
 * a set-group-id one, that was handed the caller's connection; a daemon older than the offer (it
 * refuses the claim's parameters) still serves a cat into a pipe. Real
 * daemon, real CLI, real pipes and FIFOs.
 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, constants, fstatSync, openSync } from 'node:fs'
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises'
import { createServer, request, type Server } from 'node:http'
import { Socket, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { randomBytes } from '../helpers/bytes.js'
import { tempDir } from '../helpers/temp.js'
import { lines, runShell, SHOAL_BIN, shoalJson, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'
import { cliEnv, until } from '../helpers/processes.js'

const TEST = { timeout: 120_000 }
const SIZE = 24 * 1024 * 1024

/** The daemon's `shoal_api_cat_outputs_total` by output. */
async function catOutputs (d: TestDaemon): Promise<{ pipe: number, body: number }> {
  const res = await fetch(new URL('/metrics', d.url), { headers: { authorization: `Bearer ${d.token}` }, signal: AbortSignal.timeout(15_000) })
  const text = await res.text()
  const count = (output: string): number => Number(new RegExp(`^shoal_api_cat_outputs_total\\{output="${output}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN)
  return { pipe: count('pipe'), body: count('body') }
}

/** A FIFO in `dir`: its read end (a socket over it) and a write end to give a child. */
function fifo (dir: string, name: string): { path: string, reader: Socket, writeFd: number, ino: bigint } {
  const path = join(dir, name)
  execFileSync('mkfifo', [path])
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  const writeFd = openSync(path, constants.O_WRONLY)
  const reader = new Socket({ fd: readFd, readable: true, writable: false })
  return { path, reader, writeFd, ino: fstatSync(writeFd, { bigint: true }).ino }
}

describe('shoal cat into a pipe', () => {
  const ctx = suiteContext()
  let d: TestDaemon
  let dir: string
  let data: Uint8Array
  let cid: string
  before(async () => {
    d = await startDaemon(ctx)
    dir = await tempDir(ctx)
    data = randomBytes(SIZE, 77)
    await writeFile(join(dir, 'f.bin'), data)
    cid = (await shoalJson<{ cid: string }>(d.repo, ['add', join(dir, 'f.bin'), '--to', '/f.bin', '--pin', 'none'])).cid
  })

  it('is written by the daemon into the pipe: the file\'s bytes, by path, by CID and by range; a file on stdout still gets the body', TEST, async () => {
    const before = await catOutputs(d)
    const sha = createHash('sha256').update(data).digest('hex')
    const whole = await runShell(`$SHOAL cat /f.bin | sha256sum && $SHOAL cat ${cid} | sha256sum`, d.repo)
    assert.equal(whole.code, 0, whole.stderr)
    assert.deepEqual(lines(whole.stdout.toString('utf8')).map(l => l.split(' ')[0]), [sha, sha])
    const ranged = await runShell('$SHOAL cat /f.bin --offset 1000000 --length 3000000 | cat', d.repo)
    assert.equal(ranged.code, 0, ranged.stderr)
    assert.ok(ranged.stdout.equals(data.subarray(1_000_000, 4_000_000)), 'the range\'s bytes')
    const after = await catOutputs(d)
    assert.equal(after.pipe - before.pipe, 3, 'three cats written into their pipes')

    const file = join(dir, 'out.bin')
    const toFile = await runShell(`$SHOAL cat /f.bin > ${file} && sha256sum < ${file}`, d.repo)
    assert.equal(toFile.code, 0, toFile.stderr)
    assert.equal(toFile.stdout.toString('utf8').split(' ')[0], sha)
    assert.equal((await catOutputs(d)).body - after.body, 1, 'a file on stdout is written by the CLI')
  })

  it('ends quietly when the pipe\'s reader goes away, and the daemon ends its answer', TEST, async () => {
    const before = await catOutputs(d)
    const r = await runShell('$SHOAL cat /f.bin | head -c 1000 | wc -c; $SHOAL cat /f.bin | true', d.repo)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, '')
    assert.equal(lines(r.stdout.toString('utf8'))[0].trim(), '1000')
    assert.equal((await catOutputs(d)).pipe - before.pipe, 2)
    // the daemon still reads whole files into a pipe afterwards
    const again = await runShell('$SHOAL cat /f.bin | wc -c', d.repo)
    assert.equal(again.stdout.toString('utf8').trim(), String(SIZE))
  })

  it('a CLI killed mid-read leaves no writer on its pipe: the reader sees the end', TEST, async t => {
    const f = fifo(await tempDir(t), 'out')
    const before = await catOutputs(d)
    const child = spawn(process.execPath, [SHOAL_BIN, '--repo', d.repo, 'cat', '/f.bin'], { env: cliEnv(), stdio: ['ignore', f.writeFd, 'ignore'] })
    closeSync(f.writeFd)
    t.after(() => { child.kill('SIGKILL'); f.reader.destroy() })
    let got = 0
    const ended = new Promise<void>((resolve, reject) => {
      f.reader.on('data', (b: Buffer) => { got += b.byteLength })
      f.reader.once('end', resolve)
      f.reader.once('error', reject)
    })
    // a slow reader: the pipe fills and the daemon waits on it
    await until('first bytes in the pipe', () => got > 0)
    f.reader.pause()
    assert.equal((await catOutputs(d)).pipe - before.pipe, 1, 'the daemon writes into the pipe')
    child.kill('SIGKILL')
    await new Promise(resolve => child.once('close', resolve))
    f.reader.resume()
    const timeout = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('the pipe still has a writer 20 s after the CLI died')), 20_000).unref())
    await Promise.race([ended, timeout])
    assert.ok(got < SIZE, `the read stopped (${got} of ${SIZE} bytes)`)
  })

  it('an error names its cause in one line and exits non-zero', TEST, async () => {
    const before = await catOutputs(d)
    const r = await runShell('$SHOAL cat /no-such-file | cat', d.repo)
    assert.notEqual(r.code, 0, 'the CLI exits non-zero')
    assert.equal(r.stdout.byteLength, 0)
    assert.equal(lines(r.stderr).length, 1, r.stderr)
    assert.match(r.stderr, /NotFoundError/)
    assert.equal((await catOutputs(d)).pipe - before.pipe, 1, 'the daemon took the pipe')
  })

  it('a claim on a pipe the asker does not hold is answered in the body, and nothing reaches that pipe', TEST, async t => {
    const f = fifo(await tempDir(t), 'victim')
    // another process whose stdout is the FIFO
    const other = spawn('sleep', ['60'], { stdio: ['ignore', f.writeFd, 'ignore'] })
    closeSync(f.writeFd)
    t.after(() => { other.kill('SIGKILL'); f.reader.destroy() })
    let stolen = 0
    f.reader.on('data', (b: Buffer) => { stolen += b.byteLength })
    const before = await catOutputs(d)
    const url = new URL('/api/v0/cat', d.url)
    url.search = new URLSearchParams({ arg: '/f.bin', length: '100000', 'pipe-pid': String(other.pid), 'pipe-ino': String(f.ino) }).toString()
    const res = await fetch(url, { headers: { authorization: `Bearer ${d.token}` }, signal: AbortSignal.timeout(30_000) })
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('x-shoal-output'), null)
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(0, 100_000)), 'the content is the body')
    const after = await catOutputs(d)
    assert.equal(after.pipe, before.pipe)
    assert.equal(after.body - before.body, 1)
    assert.equal(stolen, 0, 'nothing was written into the other process\'s pipe')

    // a half claim is a bad request
    url.search = new URLSearchParams({ arg: '/f.bin', 'pipe-pid': String(other.pid) }).toString()
    const half = await fetch(url, { headers: { authorization: `Bearer ${d.token}` }, signal: AbortSignal.timeout(30_000) })
    assert.equal(half.status, 400)
    assert.match(await half.text(), /pipe-pid and pipe-ino go together/)
  })

  it('reports the bytes that went into the pipe: all of them, or when the reader went away no more than it read and the pipe held', TEST, async t => {
    // a caller that shows the daemon's report: the CLI keeps it to itself
    const probe = join(await tempDir(t), 'probe.mjs')
    await writeFile(probe, `
      import { fstatSync } from 'node:fs'
      const query = new URLSearchParams({ arg: '/f.bin', 'pipe-pid': String(process.pid), 'pipe-ino': String(fstatSync(1, { bigint: true }).ino) })
      const res = await fetch(new URL('/api/v0/cat?' + query, process.env.SHOAL_URL), { headers: { authorization: 'Bearer ' + process.env.SHOAL_TOKEN }, signal: AbortSignal.timeout(30_000) })
      process.stderr.write(JSON.stringify({ output: res.headers.get('x-shoal-output'), report: await res.json() }) + String.fromCharCode(10))
    `)
    const run = async (reader: string): Promise<{ output: string, report: { bytes: number, readerGone: boolean } }> => {
      const r = await runShell(`SHOAL_URL=${d.url} SHOAL_TOKEN=${d.token} ${process.execPath} ${probe} | ${reader}`, d.repo)
      assert.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stderr)
    }
    assert.deepEqual(await run('wc -c >/dev/null'), { output: 'pipe', report: { bytes: SIZE, readerGone: false } })
    // head takes 1,000 bytes and leaves: the pipe held 64 KiB (Linux's default) more at most
    const cut = await run('head -c 1000 >/dev/null')
    assert.equal(cut.output, 'pipe')
    assert.equal(cut.report.readerGone, true)
    assert.ok(cut.report.bytes <= 1000 + 65536, `${cut.report.bytes} bytes reported, more than reached the pipe`)
  })

  it('a daemon that predates the pipe (it refuses pipe-pid and pipe-ino as unknown) still cats into a pipe: the CLI asks again without them', TEST, async t => {
    // a stand-in for the older daemon: its exact refusal of the claim's
    // parameters (its query schema is strict), every other request passed on
    // to the real daemon
    const older: Server = createServer((req, res) => {
      if (new URL(req.url ?? '/', 'http://api').searchParams.has('pipe-pid')) {
        const body = JSON.stringify({ error: { name: 'InvalidArgumentError', message: 'Unrecognized keys: "pipe-pid", "pipe-ino"' } })
        res.writeHead(400, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
        res.end(body)
        return
      }
      const upstream = new URL(d.url)
      const forward = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, answer => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      })
      forward.on('error', () => res.destroy())
      req.pipe(forward)
    })
    await new Promise<void>(resolve => older.listen(0, '127.0.0.1', resolve))
    t.after(() => { older.closeAllConnections(); older.close() })
    const client = await tempDir(t)
    await writeFile(join(client, 'api'), `/ip4/127.0.0.1/tcp/${(older.address() as AddressInfo).port}`)
    await copyFile(join(d.repo, 'api.token'), join(client, 'api.token'))
    const r = await runShell('$SHOAL cat /f.bin | sha256sum', client)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, '')
    assert.equal(r.stdout.toString('utf8').split(' ')[0], createHash('sha256').update(data).digest('hex'))
  })

  it('a connection handed to another user\'s process, or to a set-group-id one (SCM_RIGHTS), does not make that process\'s pipe the caller\'s', { ...TEST, skip: process.getuid?.() !== 0 ? 'needs root: another user\'s process' : false }, async t => {
    // the victim: a process whose stdout is a root-only FIFO, and which takes
    // descriptors from an unprivileged client (as a bus or a display server
    // does) and holds them; the attacker: that client, holding the token.
    // The victim is root, or runs as the attacker's user with root's group
    // as its effective and saved group (a set-group-id program)
    const victims = [
      { name: 'root', victim: [], attacker: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] },
      { name: 'set-group-id', victim: ['setpriv', '--reuid=65534', '--rgid=65534', '--egid=0', '--clear-groups'], attacker: [] }
    ]
    for (const { name, victim: victimPrefix, attacker: attackerPrefix } of victims) {
      const root = await tempDir(t)
      const path = join(root, 'victim-out')
      execFileSync('mkfifo', ['-m', '600', path])
      const reader = new Socket({ fd: openSync(path, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false })
      const writeFd = openSync(path, constants.O_WRONLY)
      const ino = fstatSync(writeFd, { bigint: true }).ino
      let stolen = 0
      reader.on('data', (b: Buffer) => { stolen += b.byteLength })
      const attacker = `
        const { connect } = require('node:net')
        const { port, token, ino } = JSON.parse(process.env.SHOAL_ATTACK)
        const s = connect(port, '127.0.0.1', () => { process.send('socket', s, { keepOpen: true }) })
        s.on('data', () => {})
        s.on('close', () => process.exit(0))
        process.on('message', m => {
          if (m !== 'held') return
          s.write('GET /api/v0/cat?arg=/f.bin&length=100000&pipe-pid=' + process.ppid + '&pipe-ino=' + ino + ' HTTP/1.1\\r\\nHost: api\\r\\nAuthorization: Bearer ' + token + '\\r\\nConnection: close\\r\\n\\r\\n')
        })`
      const victim = `
        const { spawn } = require('node:child_process')
        const [cmd, ...args] = [...JSON.parse(process.env.SHOAL_ATTACKER_PREFIX), process.execPath, '-e', process.env.SHOAL_ATTACKER]
        const a = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
        const held = []
        a.on('message', (m, handle) => { if (handle !== undefined) { handle.pause(); held.push(handle); a.send('held') } })
        a.on('exit', code => process.exit(code ?? 1))`
      const before = await catOutputs(d)
      const env = { ...cliEnv(), SHOAL_ATTACKER: attacker, SHOAL_ATTACKER_PREFIX: JSON.stringify(attackerPrefix), SHOAL_ATTACK: JSON.stringify({ port: Number(new URL(d.url).port), token: d.token, ino: String(ino) }) }
      const [cmd, ...args] = [...victimPrefix, process.execPath, '-e', victim]
      const child = spawn(cmd, args, { env, stdio: ['ignore', writeFd, 'pipe'] })
      closeSync(writeFd)
      let stderr = ''
      child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s })
      t.after(() => { child.kill('SIGKILL'); reader.destroy() })
      await until(`${name}: the daemon answered the cat`, async () => { const now = await catOutputs(d); return now.pipe + now.body > before.pipe + before.body })
      await new Promise(resolve => setTimeout(resolve, 500)) // bytes in the FIFO are read by now
      assert.equal(stolen, 0, `${name}: nothing reaches the victim's pipe: ${stderr}`)
      const after = await catOutputs(d)
      assert.equal(after.pipe, before.pipe, `${name}: the daemon did not take the pipe`)
      assert.equal(after.body - before.body, 1, `${name}: the content went in the body`)
    }
  })

  it('a FIFO the caller holds but may not write (an O_PATH descriptor, a read end) is not written: the daemon, root, would write for it', { ...TEST, skip: process.getuid?.() !== 0 ? 'needs root: the daemon must be able to open what the caller may not' : false }, async t => {
    // a root-only FIFO (like /run/initctl) in a directory anyone may search:
    // a user may open it O_PATH, or be handed its read end, but never write it
    const root = await tempDir(t)
    await chmod(root, 0o711)
    const secret = join(root, 'secret')
    await mkdir(secret, { mode: 0o711 })
    const path = join(secret, 'control')
    execFileSync('mkfifo', ['-m', '600', path])
    const reader = new Socket({ fd: openSync(path, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false })
    const holder = openSync(path, constants.O_WRONLY) // keeps a writer, so the reader never sees the end
    t.after(() => { reader.destroy(); closeSync(holder) })
    let stolen = 0
    reader.on('data', (b: Buffer) => { stolen += b.byteLength })
    // the token holder: an unprivileged user given the repo's address and token
    const client = join(root, 'client')
    await mkdir(client, { mode: 0o755 })
    for (const name of ['api', 'api.token']) {
      await copyFile(join(d.repo, name), join(client, name))
      await chmod(join(client, name), 0o644)
    }
    const O_PATH = 0o10000000
    for (const [what, fd] of [['O_PATH', openSync(path, O_PATH)], ['read end', openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)]] as const) {
      const before = await catOutputs(d)
      const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, SHOAL_BIN, '--repo', client, 'cat', '/f.bin', '--length', '100000'], { env: cliEnv(), stdio: ['ignore', fd, 'pipe'] })
      closeSync(fd)
      let stderr = ''
      child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s })
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      const code = await new Promise<number | null>(resolve => child.once('close', resolve)).finally(() => clearTimeout(timer))
      await new Promise(resolve => setTimeout(resolve, 200)) // bytes in the FIFO are read by now
      assert.equal(stolen, 0, `${what}: nothing reaches a FIFO its caller may not write`)
      assert.equal((await catOutputs(d)).pipe, before.pipe, `${what}: the daemon did not take the pipe`)
      assert.notEqual(code, 0, `${what}: the CLI cannot write its stdout: ${stderr}`)
      assert.equal(lines(stderr).length, 1, stderr)
    }
  })
})
