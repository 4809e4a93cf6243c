import { InvalidArgumentError } from './errors.js'

const HEADER = '/key/swarm/psk/1.0.0/'
const ENCODING = '/base16/'

/**
 * Parse a private-swarm key in the format libp2p and Kubo share:
 * three lines, `/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits.
 *
 * @throws {InvalidArgumentError} for anything else
 */
export function parseSwarmKey (text: string): Uint8Array {
  const lines = text.trim().split(/\r?\n/).map(l => l.trim())
  if (lines.length !== 3 || lines[0] !== HEADER || lines[1] !== ENCODING) {
    throw new InvalidArgumentError(`not a swarm key: expected the lines ${HEADER}, ${ENCODING} and 64 hex digits`)
  }
  if (!/^[0-9a-fA-F]{64}$/.test(lines[2])) throw new InvalidArgumentError('swarm key must be 64 hex digits (32 bytes)')
  return Uint8Array.from(Buffer.from(lines[2], 'hex'))
}

/** Format 32 key bytes as a swarm key file. */
export function formatSwarmKey (key: Uint8Array): string {
  if (key.byteLength !== 32) throw new InvalidArgumentError('a swarm key is 32 bytes')
  return `${HEADER}\n${ENCODING}\n${Buffer.from(key).toString('hex')}\n`
}
