/**
 * `shoal trust add|rm|writers` save the change to the repo config before
 * it is in force: when the config cannot be read or written, the command
 * fails with one line and the node's trust is what it was. Before, the
 * change was made live first: a `trust add` the user was told had failed
 * already applied the peer's writes, and a failed `trust rm` left the peer
 * out only until the next restart.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '../helpers/temp.js'
import { lines, runShoal, shoalJson, shoalOk, startDaemon } from '../helpers/cli.js'

const TEST = { timeout: 120_000 }

describe('shoal trust: the config first', () => {
  it('a change whose config cannot be saved fails with one line and changes nothing; once it can, it is in force and saved', TEST, async t => {
    const dir = await tempDir(t, 'shoal-trust-')
    const d = await startDaemon(t)
    const other = await shoalJson<{ id: string }>(join(dir, 'other'), ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    const configFile = join(d.repo, 'config.json')
    const good = await readFile(configFile, 'utf8')
    await shoalOk(d.repo, ['trust', 'writers', 'listed'])

    // an edit of config.json left half done
    await writeFile(configFile, '{')
    for (const args of [['trust', 'add', other.id], ['trust', 'writers', 'swarm']]) {
      const r = await runShoal(['--repo', d.repo, ...args])
      assert.equal(r.code, 1, r.stderr)
      assert.equal(lines(r.stderr).length, 1, r.stderr)
      assert.match(r.stderr, /config\.json is not valid JSON/)
    }
    const after = await shoalJson<{ writers: string, trusted: string[] }>(d.repo, ['trust', 'ls'])
    assert.deepEqual(after.trusted, [], 'a failed trust add put the peer in force')
    assert.equal(after.writers, 'listed', 'a failed trust writers changed the mode')

    // the config readable again: the change is made and saved
    await writeFile(configFile, good)
    await shoalOk(d.repo, ['trust', 'writers', 'listed'])
    await shoalOk(d.repo, ['trust', 'add', other.id])
    assert.deepEqual((await shoalJson<{ trusted: string[] }>(d.repo, ['trust', 'ls'])).trusted, [other.id])
    assert.deepEqual(JSON.parse(await readFile(configFile, 'utf8')).namespace.trusted, [other.id])

    // a failed removal leaves the peer trusted, live and saved alike
    const saved = await readFile(configFile, 'utf8')
    await writeFile(configFile, '{')
    const r = await runShoal(['--repo', d.repo, 'trust', 'rm', other.id])
    assert.equal(r.code, 1, r.stderr)
    assert.deepEqual((await shoalJson<{ trusted: string[] }>(d.repo, ['trust', 'ls'])).trusted, [other.id])
    await writeFile(configFile, saved)
    await shoalOk(d.repo, ['trust', 'rm', other.id])
    assert.deepEqual((await shoalJson<{ trusted: string[] }>(d.repo, ['trust', 'ls'])).trusted, [])
    assert.deepEqual(JSON.parse(await readFile(configFile, 'utf8')).namespace.trusted, [])
  })
})
