/**
 * The exchange's peer scores: bans for bad blocks and messages last their
 * time; what only timeouts and failed dials cost a peer is forgiven when it
 * connects again (a holder that restarted was shunned for five minutes).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PeerScores, SCORE } from '../../../node/exchange/index.js'

const peer = async (): Promise<ReturnType<typeof peerIdFromPrivateKey>> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

describe('exchange peer scores', () => {
  it('a peer banned for failures alone is forgiven when it connects again; one banned for a corrupt block or an invalid message is not', async () => {
    const scores = new PeerScores({ threshold: -50, banMs: 300_000 })
    const [restarted, liar, rude] = [await peer(), await peer(), await peer()]
    for (let i = 0; i < 6; i++) scores.adjust(restarted, SCORE.failure)
    scores.adjust(liar, SCORE.corrupt)
    scores.adjust(rude, SCORE.invalid)
    for (const p of [restarted, liar, rude]) assert.equal(scores.isBanned(p), true)

    for (const p of [restarted, liar, rude]) scores.reconnected(p)
    assert.equal(scores.isBanned(restarted), false)
    assert.equal(scores.score(restarted), 0)
    assert.equal(scores.isBanned(liar), true, 'a corrupt block is not forgiven by a reconnect')
    assert.equal(scores.isBanned(rude), true, 'nor an invalid message')

    // a failure after an invalid message still counts as misbehaviour once reconnected
    const mixed = await peer()
    scores.adjust(mixed, SCORE.invalid)
    scores.adjust(mixed, SCORE.failure)
    scores.reconnected(mixed)
    assert.equal(scores.isBanned(mixed), true)
  })
})
