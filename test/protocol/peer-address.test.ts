/**
 * Peer ids and addresses a user types (`peers connect`, `peers forget`,
 * `trust add`): refused with what a peer id looks like, not the decoder's
 * own words ("Please pass a multibase decoder for strings that do not start
 * with 1 or Q", which an operator's test met).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parsePeerAddress, parsePeerId } from '../../protocol/peer-address.js'

const ID = '12D3KooWGRUVh5d4jJjMEjFqoR5fXC5zxZuNsAHzn3pJ9FRmSoWc'

describe('peer ids a user types', () => {
  it('a valid id parses; garbage is refused with what an id looks like', () => {
    assert.equal(parsePeerId(ID).toString(), ID)
    for (const bad of ['garbage', '12D3KooW', '']) {
      assert.throws(() => parsePeerId(bad), (err: Error) => err.name === 'InvalidArgumentError' &&
        err.message === `invalid peer id ${JSON.stringify(bad)}: expected one such as 12D3KooW… (\`shoal id\`, \`shoal peers ls\`)`)
    }
    assert.throws(() => parsePeerAddress('/ip4/127.0.0.1/tcp/4001/p2p/garbage'), { name: 'InvalidArgumentError' })
  })
})
