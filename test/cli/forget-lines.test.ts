/**
 * What `shoal peers forget PEER` prints (cli/commands/peers.ts,
 * `forgetLines`): what changed, the writes gone with the member, and that
 * every node forgets on its own.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { forgetLines } from '../../cli/commands/peers.js'

const PEER = '12D3KooWEhKa5QJ5FsDmcHEE6UV5ApaLhCd6Q4SJ2TAyMtYzLdrF'
const NOW = Date.parse('2026-11-29T12:00:00Z')

describe('peers forget: its lines', () => {
  it('says when the member was last heard of and what no longer waits for it', () => {
    assert.deepEqual(forgetLines({ peer: PEER, unapplied: 0, seen: NOW - 3 * 86_400_000 }, NOW), [
      `forgot ${PEER} (last heard of 3 days ago): gc and namespace compaction on this node no longer wait for it; if it comes back, it counts again`,
      'run `shoal peers forget` on every other node too: each node waits for the members it knows'
    ])
  })

  it('warns of the member\'s own writes this node never received', () => {
    const lines = forgetLines({ peer: PEER, unapplied: 2, seen: 0 }, NOW)
    assert.equal(lines[0], `forgot ${PEER}: gc and namespace compaction on this node no longer wait for it; if it comes back, it counts again`)
    assert.equal(lines[1], 'warning: its last clock named 2 writes of its own this node never received: gone with it, unless another node holds them')
  })
})
