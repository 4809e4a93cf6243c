import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, gossipFastMsgId, type GossipWireMessage } from '../../../node/net/host.js'

function message (): Required<GossipWireMessage> {
  return { from: randomBytes(38), seqno: randomBytes(8), topic: '/shoal/namespace/1.0.0', data: randomBytes(487), signature: randomBytes(64), key: randomBytes(36) }
}

/** A deep copy, as a copy of the message from another mesh peer arrives: other buffers, same bytes. */
function copy (m: GossipWireMessage): GossipWireMessage {
  const dup = (b: Uint8Array | undefined): Uint8Array | undefined => b === undefined ? undefined : Uint8Array.from(b)
  return { from: dup(m.from), seqno: dup(m.seqno), topic: String(m.topic), data: dup(m.data), signature: dup(m.signature), key: dup(m.key) }
}

describe('gossipsub fast message id', () => {
  it('is the same for every copy of a message, so gossipsub drops copies of a checked message before checking their signature again', () => {
    const m = message()
    assert.equal(gossipFastMsgId(copy(m)), gossipFastMsgId(m))
    const bare: GossipWireMessage = { topic: 't', data: new Uint8Array([1, 2, 3]) }
    assert.equal(gossipFastMsgId(copy(bare)), gossipFastMsgId(bare))
  })

  it('changes with any byte of any field: a copy that differs (a forged one included) is checked in full', () => {
    const m = message()
    const id = gossipFastMsgId(m)
    for (const field of ['from', 'seqno', 'data', 'signature', 'key'] as const) {
      for (const at of [0, m[field].byteLength - 1]) {
        const altered = copy(m) as Required<GossipWireMessage>
        altered[field][at] ^= 1
        assert.notEqual(gossipFastMsgId(altered), id, `${field}[${at}]`)
      }
      const absent = copy(m)
      absent[field] = undefined
      const empty = copy(m)
      empty[field] = new Uint8Array(0)
      assert.notEqual(gossipFastMsgId(absent), id, `${field} absent`)
      assert.notEqual(gossipFastMsgId(empty), gossipFastMsgId(absent), `${field} empty vs absent`)
    }
    assert.notEqual(gossipFastMsgId({ ...copy(m), topic: '/other' }), id, 'topic')
    // bytes moved from one field to the next are another message
    const a: GossipWireMessage = { topic: 't', from: new Uint8Array([1, 2]), seqno: new Uint8Array([3]) }
    const b: GossipWireMessage = { topic: 't', from: new Uint8Array([1]), seqno: new Uint8Array([2, 3]) }
    assert.notEqual(gossipFastMsgId(a), gossipFastMsgId(b))
  })

  it('is what the hosts\' gossipsub uses', async () => {
    const libp2p = await createHost({ privateKey: await generateKeyPair('Ed25519') })
    try {
      // the GossipSub interface does not declare the option; the implementation keeps it under this name
      assert.equal((libp2p.services.pubsub as unknown as { fastMsgIdFn?: unknown }).fastMsgIdFn, gossipFastMsgId)
    } finally {
      await libp2p.stop()
    }
  })
})
