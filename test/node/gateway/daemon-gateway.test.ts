/**
 * The gateway as part of the daemon: content held only by another node of
 * the swarm is served, `gateway: off` opens no port, a taken address stops
 * the start with a clear error, `shoal config` validates the setting, and
 * configs made before the gateway get an address that does not clash.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile, readlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from '../../helpers/bytes.js'
import { defer, tempDir } from '../../helpers/temp.js'
import { eventually, exists, initSwarm, runShoal, shoalJson, shoalOk, startDaemon } from '../../helpers/cli.js'
import { brokerStore, call, collect, gatewayOf, parseVerifiedCar } from './helpers.js'
import { exporter } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'

const TEST = { timeout: 120_000 }

/** TCP ports a process listens on (Linux /proc: its socket inodes matched against the LISTEN sockets). */
async function listeningPorts (pid: number): Promise<number[]> {
  const inodes = new Set<string>()
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
    const m = /^socket:\[(\d+)\]$/.exec(target)
    if (m !== null) inodes.add(m[1])
  }
  const ports = new Set<number>()
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      // local_address is HEX_IP:HEX_PORT, st 0A is LISTEN, column 9 the inode
      if (cols.length > 9 && cols[3] === '0A' && inodes.has(cols[9])) ports.add(parseInt(cols[1].split(':')[1], 16))
    }
  }
  return [...ports].sort((a, b) => a - b)
}

describe('the gateway in the daemon', { concurrency: true }, () => {
  it('a file held only by another node of the swarm is served, as bytes, blocks and a CAR', TEST, async t => {
    const dir = await tempDir(t, 'shoal-gw-swarm-')
    const [repoA, repoB] = await initSwarm(dir, ['a', 'b'])
    const [a, b] = await Promise.all([startDaemon(t, repoA), startDaemon(t, repoB)])
    await shoalOk(b.repo, ['peers', 'connect', (await shoalJson(a.repo, ['id'])).addresses[0]])
    const data = randomBytes(2 * 1024 * 1024 + 123, 7)
    await writeFile(join(dir, 'remote.bin'), data)
    // no pin: no replica is pushed to b, the file is on a alone
    const { cid } = await shoalJson(a.repo, ['add', join(dir, 'remote.bin'), '--to', '/remote.bin', '--pin', 'none', '--chunker', 'size-262144'])
    const gw = await gatewayOf(b.repo)
    const whole = await call(`${gw}/ipfs/${cid as string}`)
    assert.equal(whole.status, 200, whole.body.subarray(0, 300).toString())
    assert.deepEqual(whole.body, Buffer.from(data))
    const car = await parseVerifiedCar((await call(`${gw}/ipfs/${cid as string}?format=car`)).body)
    assert.deepEqual(car.roots, [cid])
    assert.equal(car.blocks.length, 1 + Math.ceil(data.byteLength / 262144))
    const entry = await exporter(CID.parse(cid), brokerStore(gw))
    assert.ok(entry.type === 'file')
    assert.deepEqual(await collect(entry.content()), Buffer.from(data))
  })

  it('gateway: off opens no port and writes no <repo>/gateway', TEST, async t => {
    const repo = join(await tempDir(t, 'shoal-gw-off-'), 'repo')
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    assert.equal(await shoalJson(repo, ['config', 'get', 'gateway']), '127.0.0.1:0', 'a repo whose API picks a free port gets a gateway that does too')
    await shoalOk(repo, ['config', 'set', 'gateway', 'off'])
    const d = await startDaemon(t, repo)
    assert.equal(await exists(join(repo, 'gateway')), false)
    await eventually('the ready lines say the gateway is off', async () => d.output().stdout.includes('gateway off\n'))
    assert.equal((await shoalJson(repo, ['status'])).gateway, null, 'status says it is off')
    const pid = Number((await readFile(join(repo, 'daemon.lock'), 'utf8')).trim())
    const expected = new Set([Number(new URL(d.url).port)])
    for (const addr of (await shoalJson(repo, ['id'])).addresses as string[]) expected.add(Number(/\/tcp\/(\d+)/.exec(addr)?.[1]))
    assert.deepEqual(await listeningPorts(pid), [...expected].sort((x, y) => x - y), 'the API and the swarm listener, nothing else')
    // turned on again: it listens, and says where
    await d.stop()
    await shoalOk(repo, ['config', 'set', 'gateway', '127.0.0.1:0'])
    const on = await startDaemon(t, repo)
    const gw = await gatewayOf(on.repo)
    await eventually('the ready lines say where the gateway is', async () => on.output().stdout.includes(`gateway at ${gw}/ipfs/\n`))
    assert.equal((await shoalJson(repo, ['status'])).gateway, gw, 'and so does status')
    assert.match((await shoalOk(repo, ['status'])).toString(), new RegExp(`gateway: +${gw.replace(/\./g, '\\.')}/ipfs/`))
    const onPid = Number((await readFile(join(repo, 'daemon.lock'), 'utf8')).trim())
    assert.ok((await listeningPorts(onPid)).includes(Number(new URL(gw).port)))
    assert.equal((await call(`${gw}/ipfs/bafkqaaa?format=raw`)).status, 200)
    await on.stop()
    assert.equal(await exists(join(repo, 'gateway')), false, 'removed at stop')
  })

  it('two repos on one gateway address: the second daemon refuses to start, naming the setting', TEST, async t => {
    const dir = await tempDir(t, 'shoal-gw-clash-')
    const [first, second] = [join(dir, 'first'), join(dir, 'second')]
    for (const repo of [first, second]) await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    await startDaemon(t, first)
    // the second repo is set to the port the first one's gateway got
    const port = Number(new URL(await gatewayOf(first)).port)
    await shoalOk(second, ['config', 'set', 'gateway', `127.0.0.1:${port}`])
    // should it start after all, it is stopped when the test ends (by the pid in its lock), not left running
    defer(t, async () => {
      const pid = Number((await readFile(join(second, 'daemon.lock'), 'utf8').catch(() => '')).trim())
      if (pid > 0) { try { process.kill(pid, 'SIGKILL') } catch {} }
    })
    const r = await runShoal(['--repo', second, 'daemon'], { env: { SHOAL_LOG_LEVEL: 'silent' }, timeoutMs: 30_000 })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, new RegExp(`gateway address 127\\.0\\.0\\.1:${port} is already in use.*shoal config set gateway`))
    assert.equal(await exists(join(second, 'api')), false)
    assert.equal(await exists(join(second, 'daemon.lock')), false, 'the lock is released')
    assert.equal(await gatewayOf(first), `http://127.0.0.1:${port}`, 'the first daemon keeps its gateway')
  })

  it('shoal config validates the gateway setting; a repo made before the gateway gets the default', TEST, async t => {
    const dir = await tempDir(t, 'shoal-gw-config-')
    const repo = join(dir, 'repo')
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0'])
    // an API moved off its default: a second repo, whose gateway must not take the first one's port
    await shoalOk(join(dir, 'second'), ['init', '--api', '127.0.0.1:6123'])
    assert.equal(await shoalJson(join(dir, 'second'), ['config', 'get', 'gateway']), '127.0.0.1:0')
    const file = join(repo, 'config.json')
    const before = await readFile(file, 'utf8')
    for (const bad of ['10.0.0.1', 'example.com:80', '127.0.0.1:70000', '::1:5748', 'on', '']) {
      const r = await runShoal(['--repo', repo, 'config', 'set', 'gateway', bad])
      assert.equal(r.code, 1, `${bad} refused`)
      assert.match(r.stderr, /gateway/, r.stderr)
    }
    assert.equal(await readFile(file, 'utf8'), before, 'refused values change nothing')
    for (const good of ['[::1]:5748', '0.0.0.0:8080', 'localhost:0', 'off']) {
      await shoalOk(repo, ['config', 'set', 'gateway', good])
      assert.equal(await shoalJson(repo, ['config', 'get', 'gateway']), good)
    }
    // a config from before the gateway: the address init would have chosen for its API
    const { gateway: _, ...older } = JSON.parse(before)
    await writeFile(file, JSON.stringify(older))
    assert.equal(await shoalJson(repo, ['config', 'get', 'gateway']), '127.0.0.1:0', 'an API off the default: a free port')
    await writeFile(file, JSON.stringify({ ...older, api: '127.0.0.1:5747' }))
    assert.equal(await shoalJson(repo, ['config', 'get', 'gateway']), '127.0.0.1:5748', 'the default API: the default gateway')
  })

  it('two repos whose configs predate the gateway, their APIs off the default, both start: each gateway on a port of its own', TEST, async t => {
    const dir = await tempDir(t, 'shoal-gw-older-')
    const repos = [join(dir, 'one'), join(dir, 'two')]
    for (const repo of repos) {
      await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
      const { gateway: _, ...older } = JSON.parse(await readFile(join(repo, 'config.json'), 'utf8'))
      await writeFile(join(repo, 'config.json'), JSON.stringify(older))
    }
    await Promise.all(repos.map(async repo => await startDaemon(t, repo)))
    const [one, two] = await Promise.all(repos.map(gatewayOf))
    assert.notEqual(one, two)
    for (const gw of [one, two]) assert.equal((await call(`${gw}/ipfs/bafkqaaa?format=raw`)).status, 200)
  })
})
