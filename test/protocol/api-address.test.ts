/**
 * Loopback hosts (protocol/api-address.ts): the API listens on them only,
 * a loopback gateway answers requests naming them only, and a gateway on
 * another address is refused unless it is one.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isLoopbackHost, parseApiAddress } from '../../protocol/api-address.js'
import { InvalidArgumentError } from '../../protocol/errors.js'

describe('loopback hosts', () => {
  it('127/8, ::1 in every spelling and localhost in any case are loopback', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '127.255.255.255', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1', 'localhost', 'LocalHost']) {
      assert.equal(isLoopbackHost(host), true, host)
    }
  })

  it('other addresses, names and near misses are not', () => {
    for (const host of ['10.0.0.1', '128.0.0.1', '0.0.0.0', '::', '::2', '::ffff:10.0.0.1', '127.0.0.256', '127.0.0', '127.0.0.1.evil.example', 'localhost.evil.example', 'evil.example', '', '[::1]']) {
      assert.equal(isLoopbackHost(host), false, host)
    }
  })

  it('the API address takes a loopback host in brackets or bare, and refuses others with a typed error', () => {
    // an IPv4-mapped address is the IPv4 socket: named as such, so <repo>/api holds an /ip4/ multiaddr
    assert.deepEqual(parseApiAddress('[::ffff:127.0.0.1]:5001'), { host: '127.0.0.1', port: 5001 })
    assert.deepEqual(parseApiAddress('[::ffff:7f01:203]:5001'), { host: '127.1.2.3', port: 5001 })
    assert.deepEqual(parseApiAddress('[0:0:0:0:0:0:0:1]:5001'), { host: '::1', port: 5001 })
    assert.deepEqual(parseApiAddress('LOCALHOST:5001'), { host: 'localhost', port: 5001 })
    assert.deepEqual(parseApiAddress('127.0.0.1:5001'), { host: '127.0.0.1', port: 5001 })
    assert.deepEqual(parseApiAddress('[::1]:1'), { host: '::1', port: 1 })
    for (const text of ['0.0.0.0:5001', '[::ffff:10.0.0.1]:5001', '10.0.0.1:80', '127.0.0.1', '127.0.0.1:65536']) {
      assert.throws(() => parseApiAddress(text), InvalidArgumentError, text)
    }
  })
})
