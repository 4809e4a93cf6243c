/**
 * What a user is told when the members do not take a node's writes, through
 * the CLI, two daemons of one private swarm on 127.0.0.1:
 *
 * - `shoal invite` says what the invite gives in each mode: join, read and
 *   write with `writers: swarm`; join and read, and write once trusted,
 *   with `writers: listed`.
 * - a node left out of the listed writers that writes learns it (writer
 *   notices): `status` and `trust ls` say its writes are refused, and
 *   `add`, `mkdir`, `mv`, `rm` warn when every connected member refuses.
 *   Before, the writer's status said every member writes and nothing on it
 *   said its writes went nowhere.
 * - a refused `peers connect` is the user's error, not the node's: the
 *   daemon logs it once, at warn, with its reason once (it was an error
 *   line, the reason given twice).
 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { tempDir } from '../helpers/temp.js'
import { eventually, initSwarm, lines, runShoal, shoalJson, shoalOk, startDaemon, suiteContext, type TestDaemon } from '../helpers/cli.js'

const TEST = { timeout: 90_000 }

/** The JSON log lines of a daemon's stderr. */
function logLines (stderr: string): Array<{ level: number, msg: string, [k: string]: unknown }> {
  return lines(stderr).filter(l => l.startsWith('{')).map(l => JSON.parse(l))
}

describe('a writer the members do not trust, through the CLI', () => {
  const ctx = suiteContext()
  let dir: string
  let member: TestDaemon, writer: TestDaemon
  let memberId: string, writerId: string

  before(async () => {
    dir = await tempDir(ctx, 'shoal-untrusted-cli-')
    const [m, w] = await initSwarm(dir, ['member', 'writer'])
    ;[member, writer] = await Promise.all([startDaemon(ctx, m), startDaemon(ctx, w)])
    memberId = (await shoalJson(member.repo, ['id'])).id
    writerId = (await shoalJson(writer.repo, ['id'])).id
  })

  it('invite says what its holder may do in each writers mode', TEST, async () => {
    const swarm = await runShoal(['--repo', member.repo, 'invite'])
    assert.equal(swarm.code, 0)
    assert.match(swarm.stderr, /join, read and write everything/)
    assert.equal((await shoalJson(member.repo, ['invite'])).writers, 'swarm')

    await shoalOk(member.repo, ['trust', 'writers', 'listed'])
    const listed = await runShoal(['--repo', member.repo, 'invite'])
    assert.equal(listed.code, 0)
    assert.doesNotMatch(listed.stderr, /read and write everything/)
    assert.match(listed.stderr, /join and read everything/)
    assert.match(listed.stderr, /cannot write until the members trust it/)
    assert.match(listed.stderr, /shoal trust add PEER/)
    assert.equal((await shoalJson(member.repo, ['invite'])).writers, 'listed')
  })

  it('the writer learns its writes are refused: status, trust ls, and a warning after each write', TEST, async () => {
    await shoalOk(writer.repo, ['peers', 'connect', (await shoalJson(member.repo, ['id'])).addresses[0]])
    const file = join(dir, 'f.txt')
    await writeFile(file, 'written by a node the members do not trust\n')
    await shoalOk(writer.repo, ['add', file, '--to', '/f.txt'])
    const refused = `your writes are refused by 1 of 1 connected member (they do not trust this node): ask a member to \`shoal trust add ${writerId}\``
    await eventually('the writer\'s status says its writes are refused', async () =>
      (await shoalOk(writer.repo, ['status'])).toString().includes(refused), 45_000)
    const status = (await shoalOk(writer.repo, ['status'])).toString()
    assert.match(status, new RegExp(`refused by ${memberId}`))
    assert.deepEqual((await shoalJson(writer.repo, ['status'])).ownWrites, { members: 1, refusedBy: [memberId] })
    const trustLs = (await shoalOk(writer.repo, ['trust', 'ls'])).toString()
    assert.ok(trustLs.includes(`refused: ${refused}`), trustLs)

    for (const args of [['add', file, '--to', '/g.txt'], ['mkdir', '/d'], ['mv', '/g.txt', '/d/g.txt'], ['rm', '/d/g.txt']]) {
      const r = await runShoal(['--repo', writer.repo, ...args])
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
      assert.deepEqual(lines(r.stderr).filter(l => l.startsWith('warning:')), [`warning: written on this node only: ${refused}`], args.join(' '))
    }
    // the member's own status says nothing of the kind: it refuses no one's notice and is refused by none
    assert.doesNotMatch((await shoalOk(member.repo, ['status'])).toString(), /refused/)

    // trusted: the member applies the writer's entries, and the writer hears so (the member's clock names them)
    await shoalOk(member.repo, ['trust', 'add', writerId])
    await eventually('the member applied the writer\'s files', async () => (await runShoal(['--repo', member.repo, 'stat', '/f.txt'])).code === 0, 30_000)
    await eventually('the writer no longer says its writes are refused', async () =>
      !(await shoalOk(writer.repo, ['status'])).toString().includes('refused'), 45_000)
    const after = await runShoal(['--repo', writer.repo, 'mkdir', '/e'])
    assert.equal(after.code, 0)
    assert.deepEqual(lines(after.stderr).filter(l => l.startsWith('warning:')), [])
  })

  it('a refused peers connect is logged once, at warn, with its reason once', TEST, async () => {
    // a port that refuses: listened on, then closed
    const server = createServer()
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    await new Promise<void>(resolve => server.close(() => { resolve() }))
    // a peer id no daemon runs for (one already connected would be answered by its connection)
    const absent = (await shoalJson(join(dir, 'absent'), ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])).id as string
    const r = await runShoal(['--repo', writer.repo, 'peers', 'connect', `/ip4/127.0.0.1/tcp/${port}/p2p/${absent}`])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /PeerUnreachableError/)
    const refusals = (): ReturnType<typeof logLines> => logLines(writer.output().stderr).filter(l => JSON.stringify(l).includes(String(port)))
    await eventually('the refused connect is logged', async () => refusals().length > 0, 10_000)
    // a second line would have come with the first
    await new Promise(resolve => setTimeout(resolve, 300))
    const logged = refusals()
    assert.equal(logged.length, 1, JSON.stringify(logged))
    assert.equal(logged[0].level, 40, 'warn, not error')
    assert.equal(logged[0].name, 'PeerUnreachableError')
    const text = JSON.stringify(logged[0])
    assert.equal(text.split('ECONNREFUSED').length - 1, 1, `the reason once: ${text}`)
  })
})
