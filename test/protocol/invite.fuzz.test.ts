/**
 * Property tests of the invite codec: valid invites round-trip; random text
 * and mutated invites give {@link InvalidInviteError} or a valid invite,
 * never another error.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { decodeInvite, encodeInvite, inviteDialAddrs, INVITE_PREFIX, MAX_INVITE_ADDRS, type Invite } from '../../protocol/invite.js'

const RUNS = 5_000

const addrArb = fc.oneof(
  fc.tuple(fc.nat({ max: 255 }), fc.nat({ max: 255 }), fc.nat({ max: 65535 })).map(([a, b, p]) => `/ip4/10.${a}.${b}.1/tcp/${p}`),
  fc.nat({ max: 65535 }).map(p => `/ip6/::1/tcp/${p}`),
  fc.nat({ max: 65535 }).map(p => `/dns4/node.example/tcp/${p}`)
)

function assertInvalidOrValid (text: string): void {
  try {
    const invite = decodeInvite(text)
    // what decodes must encode to an equivalent invite
    assert.deepEqual(decodeInvite(encodeInvite(invite)), invite)
  } catch (err: any) {
    assert.equal(err?.name, 'InvalidInviteError', `unexpected ${String(err?.name)}: ${String(err?.message)}`)
  }
}

describe('invite codec', () => {
  it('round-trips every valid invite, with and without a key', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    fc.assert(fc.property(
      fc.array(addrArb, { minLength: 1, maxLength: MAX_INVITE_ADDRS }),
      fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: undefined }),
      (addrs, key) => {
        const invite: Invite = key === undefined ? { peer, addrs } : { peer, addrs, key }
        const text = encodeInvite(invite)
        assert.ok(text.startsWith(INVITE_PREFIX))
        assert.deepEqual(decodeInvite(`  ${text}\n`), invite)
        assert.deepEqual(inviteDialAddrs(invite), addrs.map(a => `${a}/p2p/${peer}`))
      }
    ), { numRuns: 500 })
  })

  it('random text and mutated invites are a typed error or a valid invite, never a crash', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const good = encodeInvite({ peer, addrs: ['/ip4/10.0.0.5/tcp/4747'], key: new Uint8Array(32).fill(7) })
    const payload = JSON.parse(Buffer.from(good.slice(INVITE_PREFIX.length), 'base64url').toString())
    fc.assert(fc.property(fc.string({ maxLength: 300 }), s => { assertInvalidOrValid(s); assertInvalidOrValid(INVITE_PREFIX + s) }), { numRuns: RUNS })
    fc.assert(fc.property(fc.nat({ max: good.length - 1 }), fc.string({ minLength: 1, maxLength: 1 }), (i, c) => { assertInvalidOrValid(good.slice(0, i) + c + good.slice(i + 1)) }), { numRuns: RUNS })
    fc.assert(fc.property(fc.anything(), fc.constantFrom('peer', 'addrs', 'key', 'other'), (value, field) => {
      assertInvalidOrValid(INVITE_PREFIX + Buffer.from(JSON.stringify({ ...payload, [field]: value }) ?? 'null').toString('base64url'))
    }), { numRuns: RUNS })
  })
})
