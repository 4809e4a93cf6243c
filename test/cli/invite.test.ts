/**
 * Closed by default, driven through the CLI with real daemons on 127.0.0.1:
 * a default repo is a private swarm of its own, strangers cannot connect,
 * an invite lets a fresh repo join, and `shoal trust` decides who writes.
 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { tempDir } from '../helpers/temp.js'
import { eventually, exists, lines, runShoal, shoalJson, shoalOk, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'

const TEST = { timeout: 90_000 }
const LOOPBACK = ['--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0']

async function peerIds (d: TestDaemon): Promise<string[]> {
  return (await shoalJson<Array<{ id: string }>>(d.repo, ['peers', 'ls'])).map(p => p.id).sort()
}

async function failsOneLine (args: string[], match: RegExp): Promise<void> {
  const r = await runShoal(args)
  assert.notEqual(r.code, 0, `${args.join(' ')} should fail`)
  assert.equal(lines(r.stderr).length, 1, `one line on stderr, got: ${r.stderr}`)
  assert.match(r.stderr, match)
}

describe('closed by default: private swarms and invites', () => {
  const ctx = suiteContext()
  let dir: string
  let victim: TestDaemon
  let victimId: string
  /** The peer that joined with an invite. */
  let memberId: string

  before(async () => {
    dir = await tempDir(ctx, 'shoal-invite-')
    // a repo made the way the README makes one: no swarm option at all
    await shoalOk(join(dir, 'victim'), ['init', ...LOOPBACK])
    victim = await startDaemon(ctx, join(dir, 'victim'))
    victimId = (await shoalJson(victim.repo, ['id'])).id
  })

  it('a default repo is a private swarm of its own, with its key on disk', TEST, async () => {
    assert.equal((await shoalJson(victim.repo, ['status'])).swarm, 'private')
    assert.match(await readFile(join(victim.repo, 'swarm.key'), 'utf8'), /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    const config = JSON.parse(await readFile(join(victim.repo, 'config.json'), 'utf8'))
    assert.equal(config.privateSwarm, true)
  })

  it('a stranger with a default repo cannot connect to a default node', TEST, async () => {
    await shoalOk(join(dir, 'stranger'), ['init', ...LOOPBACK])
    const stranger = await startDaemon(ctx, join(dir, 'stranger'))
    const addr = (await shoalJson(victim.repo, ['id'])).addresses[0]
    await failsOneLine(['--repo', stranger.repo, 'peers', 'connect', addr], /PeerUnreachableError/)
    assert.deepEqual(await peerIds(victim), [])
    // and reads nothing the victim holds
    const secret = join(dir, 'secret.txt')
    await writeFile(secret, 'salaries\n')
    const added = await shoalJson(victim.repo, ['add', secret, '--to', '/hr/secret.txt'])
    await failsOneLine(['--repo', stranger.repo, 'cat', added.cid], /not found/i)
    await stranger.stop()
  })

  it('an invite lets a fresh repo join, read and write, with no other step', TEST, async () => {
    const r = await runShoal(['--repo', victim.repo, 'invite'])
    assert.equal(r.code, 0, r.stderr)
    const invite = r.stdout.toString().trim()
    assert.equal(lines(r.stdout.toString()).length, 1, 'one line on stdout')
    assert.match(invite, /^shoal-invite-1:[A-Za-z0-9_-]+$/)
    assert.match(r.stderr, /secret/, 'the user is told the invite is a secret')
    const info = await shoalJson(victim.repo, ['invite'])
    assert.equal(info.peer, victimId)
    assert.equal(info.swarm, 'private')
    assert.ok(info.addresses.length > 0)

    const joined = await shoalJson(join(dir, 'joiner'), ['init', ...LOOPBACK, '--join', invite])
    memberId = joined.id
    assert.equal(joined.swarm, 'private')
    assert.ok(joined.bootstrap.every((a: string) => a.endsWith(`/p2p/${victimId}`)))
    assert.equal(await readFile(join(dir, 'joiner', 'swarm.key'), 'utf8'), await readFile(join(victim.repo, 'swarm.key'), 'utf8'))
    const joiner = await startDaemon(ctx, join(dir, 'joiner'))
    await eventually('the joiner dialled the inviter by itself', async () => (await peerIds(joiner)).includes(victimId))

    // read what the inviter wrote, by path (the namespace) and by content
    const data = randomBytes(3 * 1024 * 1024 + 5)
    await writeFile(join(dir, 'report.bin'), data)
    await shoalOk(victim.repo, ['add', join(dir, 'report.bin'), '--to', '/docs/report.bin'])
    await eventually('the inviter\'s file appears on the joiner', async () => (await runShoal(['--repo', joiner.repo, 'stat', '/docs/report.bin'])).code === 0)
    assert.equal(Buffer.compare(await shoalOk(joiner.repo, ['cat', '/docs/report.bin']), data), 0, 'byte-identical on the joiner')

    // write: the inviter applies the member's entries (every key holder writes by default)
    await writeFile(join(dir, 'from-joiner.txt'), 'hello from the new member\n')
    await shoalOk(joiner.repo, ['add', join(dir, 'from-joiner.txt'), '--to', '/docs/from-joiner.txt'])
    await eventually('the joiner\'s write appears on the inviter', async () => (await runShoal(['--repo', victim.repo, 'stat', '/docs/from-joiner.txt'])).code === 0)
    assert.equal((await shoalOk(victim.repo, ['cat', '/docs/from-joiner.txt'])).toString(), 'hello from the new member\n')
    assert.ok((await peerIds(victim)).includes(memberId))
    await joiner.stop()
  })

  it('--join - reads the invite from stdin (no secret on the command line); an empty stdin is one line and creates nothing', TEST, async () => {
    const invite = (await shoalOk(victim.repo, ['invite'])).toString().trim()
    const piped = await runShoal(['--json', '--repo', join(dir, 'piped'), 'init', ...LOOPBACK, '--join', '-'], { input: `${invite}\n` })
    assert.equal(piped.code, 0, piped.stderr)
    const joined = JSON.parse(piped.stdout.toString())
    assert.equal(joined.swarm, 'private')
    assert.ok(joined.bootstrap.every((a: string) => a.endsWith(`/p2p/${victimId}`)))
    assert.equal(await readFile(join(dir, 'piped', 'swarm.key'), 'utf8'), await readFile(join(victim.repo, 'swarm.key'), 'utf8'))
    for (const input of ['', '\n  \n']) {
      const r = await runShoal(['--repo', join(dir, 'no-invite'), 'init', ...LOOPBACK, '--join', '-'], { input })
      assert.notEqual(r.code, 0)
      assert.equal(lines(r.stderr).length, 1, r.stderr)
      assert.match(r.stderr, /no invite on stdin/)
      assert.equal(await exists(join(dir, 'no-invite')), false, 'no repo created')
    }
  })

  it('a bad invite or conflicting swarm options: one line, exit 1, no repo created', TEST, async () => {
    const invite = (await shoalJson(victim.repo, ['invite'])).invite as string
    const payload = JSON.parse(Buffer.from(invite.slice('shoal-invite-1:'.length), 'base64url').toString())
    const tampered = (body: unknown): string => 'shoal-invite-1:' + Buffer.from(JSON.stringify(body)).toString('base64url')
    const bad: Array<[string, RegExp]> = [
      ['garbage', /InvalidInviteError/],
      ['shoal-invite-1:', /InvalidInviteError/],
      ['shoal-invite-1:!!!', /InvalidInviteError/],
      [tampered({ ...payload, key: 'abcd' }), /key/],
      [tampered({ ...payload, peer: 'not-a-peer' }), /peer/],
      [tampered({ ...payload, addrs: [] }), /addrs/],
      [tampered({ ...payload, addrs: ['/ip4/1.2.3.4/tcp/1/p2p/' + victimId] }), /p2p/],
      [tampered({ ...payload, extra: 1 }), /unknown field/],
      [tampered({ ...payload, members: 'x' }), /members/],
      [tampered({ ...payload, members: [{ peer: victimId, addrs: ['/ip4/1.2.3.4/tcp/1'] }] }), /inviter/],
      [tampered({ ...payload, members: [{ peer: 'not-a-peer', addrs: ['/ip4/1.2.3.4/tcp/1'] }] }), /members\[0\]\.peer/],
      ['shoal-invite-1:' + 'A'.repeat(9000), /longer/]
    ]
    for (const [text, match] of bad) {
      const repo = join(dir, `bad-${randomBytes(4).toString('hex')}`)
      await failsOneLine(['--repo', repo, 'init', ...LOOPBACK, '--join', text], match)
      assert.equal(await exists(join(repo, 'config.json')), false, `no repo after ${text.slice(0, 40)}`)
    }
    const repo = join(dir, 'conflicting')
    await failsOneLine(['--repo', repo, 'init', ...LOOPBACK, '--join', invite, '--open'], /exclude each other/)
    await failsOneLine(['--repo', repo, 'init', ...LOOPBACK, '--open', '--swarm-key', join(victim.repo, 'swarm.key')], /exclude each other/)
    assert.equal(await exists(join(repo, 'config.json')), false)
  })

  it('trust: bad peers are refused with one line; every member of a private swarm writes', TEST, async () => {
    await failsOneLine(['--repo', victim.repo, 'trust', 'add', 'garbage'], /InvalidArgumentError/)
    await failsOneLine(['--repo', victim.repo, 'trust', 'add', victimId], /itself/)
    const ls = await shoalJson(victim.repo, ['trust', 'ls'])
    assert.equal(ls.everyone, true)
    assert.equal(ls.writers, 'swarm')
    assert.deepEqual(ls.trusted, [])
    await failsOneLine(['--repo', victim.repo, 'trust', 'rm', 'garbage'], /InvalidArgumentError/)
    // removing one member of a private swarm needs a list first: said, and nothing changes
    await failsOneLine(['--repo', victim.repo, 'trust', 'rm', memberId], /every member writes/)
    await failsOneLine(['--repo', victim.repo, 'trust', 'writers', 'nobody'], /argument/)
    const config = await readFile(join(victim.repo, 'config.json'), 'utf8')
    assert.equal(JSON.parse(config).namespace.writers, 'swarm', 'nothing changed')
  })
})

/** A gauge or counter of the daemon's `/metrics`, 0 when absent. */
async function metric (d: TestDaemon, name: string): Promise<number> {
  const res = await fetch(new URL('/metrics', d.url), { headers: { authorization: `Bearer ${d.token}` }, signal: AbortSignal.timeout(10_000) })
  const line = (await res.text()).split('\n').find(l => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

describe('an open swarm: only trusted peers write', () => {
  const ctx = suiteContext()
  let dir: string
  let owner: TestDaemon
  let stranger: TestDaemon
  let ownerId: string
  let strangerId: string

  before(async () => {
    dir = await tempDir(ctx, 'shoal-open-')
    await Promise.all(['owner', 'stranger'].map(async n => await shoalOk(join(dir, n), ['init', ...LOOPBACK, '--open'])))
    ;[owner, stranger] = await Promise.all(['owner', 'stranger'].map(async n => await startDaemon(ctx, join(dir, n))))
    ownerId = (await shoalJson(owner.repo, ['id'])).id
    strangerId = (await shoalJson(stranger.repo, ['id'])).id
  })

  it('an untrusted peer reads and fetches, but its put, move and delete never change the trusted node\'s tree', TEST, async () => {
    assert.equal((await shoalJson(owner.repo, ['status'])).swarm, 'open')
    assert.equal((await shoalJson(owner.repo, ['trust', 'ls'])).everyone, false)
    const secret = randomBytes(256 * 1024)
    await writeFile(join(dir, 'secret.bin'), secret)
    await writeFile(join(dir, 'other.txt'), 'other\n')
    await shoalOk(owner.repo, ['add', join(dir, 'secret.bin'), '--to', '/hr/secret.bin'])
    await shoalOk(owner.repo, ['add', join(dir, 'other.txt'), '--to', '/hr/other.txt'])
    await shoalOk(stranger.repo, ['peers', 'connect', (await shoalJson(owner.repo, ['id'])).addresses[0]])
    // the stranger chooses to apply the owner's entries, so it sees the tree and can try to change it
    await shoalOk(stranger.repo, ['trust', 'add', ownerId])
    await eventually('the stranger sees the owner\'s tree', async () => (await runShoal(['--repo', stranger.repo, 'stat', '/hr/other.txt'])).code === 0)
    assert.equal(Buffer.compare(await shoalOk(stranger.repo, ['cat', '/hr/secret.bin']), secret), 0, 'blocks are still served to untrusted peers')

    const ignoredBefore = await metric(owner, 'shoal_namespace_untrusted_messages_total')
    await writeFile(join(dir, 'planted.txt'), 'planted\n')
    await shoalOk(stranger.repo, ['add', join(dir, 'planted.txt'), '--to', '/hr/planted.txt'])
    await shoalOk(stranger.repo, ['mv', '/hr/secret.bin', '/hr/moved.bin'])
    await shoalOk(stranger.repo, ['rm', '/hr/other.txt'])
    await eventually('the owner received and ignored the stranger\'s gossip', async () => await metric(owner, 'shoal_namespace_untrusted_messages_total') >= ignoredBefore + 3)
    const names = (await shoalJson<Array<{ name: string }>>(owner.repo, ['ls', '/hr'])).map(e => e.name).sort()
    assert.deepEqual(names, ['other.txt', 'secret.bin'], 'the owner\'s tree is unchanged')
    assert.equal(Buffer.compare(await shoalOk(owner.repo, ['cat', '/hr/secret.bin']), secret), 0)
    assert.match((await shoalOk(owner.repo, ['status'])).toString(), /writers: +this node and 0 trusted peers/)
  })

  it('trust add applies a peer\'s entries; trust rm stops its later ones', TEST, async () => {
    const added = await shoalJson(owner.repo, ['trust', 'add', strangerId])
    assert.deepEqual(added.trusted, [strangerId])
    const config = JSON.parse(await readFile(join(owner.repo, 'config.json'), 'utf8'))
    assert.deepEqual(config.namespace.trusted, [strangerId], 'saved in the config')
    await eventually('the newly trusted peer\'s writes apply', async () => (await runShoal(['--repo', owner.repo, 'stat', '/hr/planted.txt'])).code === 0)
    await eventually('its move and delete apply too', async () => {
      const names = (await shoalJson<Array<{ name: string }>>(owner.repo, ['ls', '/hr'])).map(e => e.name).sort()
      return names.join(',') === 'moved.bin,planted.txt'
    })

    const removed = await shoalJson(owner.repo, ['trust', 'rm', strangerId])
    assert.deepEqual(removed.trusted, [])
    await failsOneLine(['--repo', owner.repo, 'trust', 'rm', strangerId], /not trusted/)
    const ignoredBefore = await metric(owner, 'shoal_namespace_untrusted_messages_total')
    await writeFile(join(dir, 'later.txt'), 'later\n')
    await shoalOk(stranger.repo, ['add', join(dir, 'later.txt'), '--to', '/later.txt'])
    await eventually('the owner ignored the removed peer\'s next write', async () => await metric(owner, 'shoal_namespace_untrusted_messages_total') > ignoredBefore)
    assert.notEqual((await runShoal(['--repo', owner.repo, 'stat', '/later.txt'])).code, 0, 'a removed writer\'s later entry is not applied')
    await failsOneLine(['--repo', owner.repo, 'trust', 'writers', 'swarm'], /open swarm/)
  })
})

describe('an invite names the members its inviter is connected to', () => {
  const ctx = suiteContext()

  it('a node that joins while the inviter is down finds the swarm through them', TEST, async () => {
    const dir = await tempDir(ctx, 'shoal-invite-members-')
    await shoalOk(join(dir, 'a'), ['init', ...LOOPBACK])
    const a = await startDaemon(ctx, join(dir, 'a'))
    const first = (await shoalJson(a.repo, ['invite'])).invite as string
    await shoalOk(join(dir, 'b'), ['init', ...LOOPBACK, '--join', first])
    const b = await startDaemon(ctx, join(dir, 'b'))
    const bId = (await shoalJson(b.repo, ['id'])).id as string
    await eventually('b joined a', async () => (await peerIds(a)).includes(bId))

    const info = await shoalJson(a.repo, ['invite'])
    assert.deepEqual(info.members, [bId], 'the invite names the member a is connected to')
    const aId = (await shoalJson(a.repo, ['id'])).id as string
    await a.stop()

    const joined = await shoalJson(join(dir, 'c'), ['init', ...LOOPBACK, '--join', info.invite])
    assert.ok(joined.bootstrap.some((addr: string) => addr.endsWith(`/p2p/${bId}`)), 'b is dialled at start too')
    const c = await startDaemon(ctx, join(dir, 'c'))
    await eventually('c found the swarm through b, with the inviter down', async () => (await peerIds(c)).includes(bId))
    // and shares its namespace: a file b has is read on c
    await writeFile(join(dir, 'f.txt'), 'written on b\n')
    await shoalOk(b.repo, ['add', join(dir, 'f.txt'), '--to', '/f.txt'])
    await eventually('b\'s file appears on c', async () => (await runShoal(['--repo', c.repo, 'stat', '/f.txt'])).code === 0)
    assert.equal((await shoalOk(c.repo, ['cat', '/f.txt'])).toString(), 'written on b\n')
    // the inviter, down, is a peer c knows and keeps dialling: its status says so, naming it
    assert.deepEqual((await shoalJson<{ unreachable: Array<{ id: string, kept: boolean }> }>(c.repo, ['status'])).unreachable.map(p => p.id), [aId])
    assert.match((await shoalOk(c.repo, ['status'])).toString(), new RegExp(`peers: +1; 1 known peer not reached, re-dialled \\(${aId}.*shoal peers disconnect ID`))
  })
})
