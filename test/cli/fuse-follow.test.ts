/**
 * `tail -f` in node B's mount of a log that node A appends to through its
 * own mount (`>>`): B's tail prints every line A appends, as each version
 * reaches B by gossip (docs/fuse.md, "Open files keep their version").
 * Before, B's tail printed the first version and nothing more: its handle
 * read the version it opened. Two real daemons, each serving its mount.
 */
import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { appendFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { suiteContext } from '../helpers/cli.js'
import { mountedPair } from '../helpers/mounted-pair.js'
import { eventually, tailFollow } from '../node/fuse/helpers.js'

const TEST = { timeout: 90_000 }

describe('tail -f of a file another node appends to', () => {
  const ctx = suiteContext()
  let mntA = ''
  let mntB = ''

  before(async () => {
    const { a, b } = await mountedPair(ctx, 'shoal-fuse-follow-')
    mntA = a.mnt
    mntB = b.mnt
  })

  it('prints each line appended through the other node\'s mount', TEST, async t => {
    let text = 'started\n'
    await writeFile(join(mntA, 'service.log'), text)
    await eventually(async () => (await stat(join(mntB, 'service.log'))).size === text.length, 20_000, 'B\'s mount shows the log')
    const printed = tailFollow(t, join(mntB, 'service.log'))
    await eventually(async () => printed() === text, 20_000, 'B\'s tail prints the first line')
    for (let n = 1; n <= 3; n++) {
      const line = `request ${n} served\n`
      await appendFile(join(mntA, 'service.log'), line)
      text += line
      await eventually(async () => printed() === text, 20_000, `B's tail prints line ${n} (printed: ${JSON.stringify(printed())})`)
    }
    assert.equal(printed(), text)
  })
})
