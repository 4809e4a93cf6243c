/**
 * A file's pin in its two forms: stored (what `Namespace` callers see: CIDs
 * as strings, JSON-friendly) and wire (what log entries carry: CIDs as
 * links), and the check of a caller's pin.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { decodePin, type ColdCopy, type Pin } from '../../protocol/namespace.js'
import { InvalidMessageError } from '../../protocol/block-exchange.js'
import { InvalidArgumentError } from '../errors.js'
import type { FilePin, StoredColdCopy } from './api.js'

/** A CID given as text (or a CID), parsed; the codec and hash rules are the wire's. */
function parseCid (value: unknown, what: string): CID {
  const given = CID.asCID(value)
  if (given !== null) return given
  try {
    return CID.parse(String(value))
  } catch {
    throw new InvalidArgumentError(`${what} is not a CID: ${JSON.stringify(value)}`)
  }
}

/**
 * A caller's pin, checked by the same rules as a pin arriving in a log entry
 * ({@link decodePin}), in wire form (undefined: no pin).
 *
 * @throws {InvalidArgumentError} for a policy that is not canonical, a manifest that does not fit, or a malformed cold copy
 */
export function checkPin (pin: FilePin | undefined | null): Pin | undefined {
  if (pin === undefined || pin === null) return undefined
  if (typeof pin !== 'object') throw new InvalidArgumentError('a pin is { policy, manifest?, cold? }')
  const wire: Record<string, unknown> = { ...pin }
  if (pin.manifest !== undefined) wire.manifest = parseCid(pin.manifest, 'a stripe manifest')
  if (pin.cold !== undefined) {
    if (typeof pin.cold !== 'object' || pin.cold === null) throw new InvalidArgumentError('a cold copy is an object')
    wire.cold = { ...pin.cold, indexCid: parseCid(pin.cold.indexCid, 'a cold index') }
  }
  try {
    return decodePin(wire)
  } catch (err) {
    if (err instanceof InvalidMessageError) throw new InvalidArgumentError(err.message)
    throw err
  }
}

function wireCold (c: StoredColdCopy): ColdCopy {
  const out: ColdCopy = { endpoint: c.endpoint, bucket: c.bucket, carKey: c.carKey, carSize: c.carSize, indexKey: c.indexKey, indexSize: c.indexSize, indexCid: CID.parse(c.indexCid), blocks: c.blocks, blockBytes: c.blockBytes }
  if (c.region !== undefined) out.region = c.region
  return out
}

function storedCold (c: ColdCopy): StoredColdCopy {
  const out: StoredColdCopy = { endpoint: c.endpoint, bucket: c.bucket, carKey: c.carKey, carSize: c.carSize, indexKey: c.indexKey, indexSize: c.indexSize, indexCid: c.indexCid.toString(), blocks: c.blocks, blockBytes: c.blockBytes }
  if (c.region !== undefined) out.region = c.region
  return out
}

/** A wire pin as stored (CIDs as strings; no key for an absent field). */
export function storedPin (pin: Pin): FilePin {
  const out: FilePin = { policy: pin.policy }
  if (pin.manifest !== undefined) out.manifest = pin.manifest.toString()
  if (pin.cold !== undefined) out.cold = storedCold(pin.cold)
  return out
}

/** A stored pin in wire form. */
export function wirePin (pin: FilePin): Pin {
  const out: Pin = { policy: pin.policy }
  if (pin.manifest !== undefined) out.manifest = CID.parse(pin.manifest)
  if (pin.cold !== undefined) out.cold = wireCold(pin.cold)
  return out
}

/** Whether two stored pins say the same (policy, manifest, cold copy), whatever the order of their keys. */
export function samePin (a: FilePin | undefined, b: FilePin | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  return JSON.stringify(storedPin(wirePin(a))) === JSON.stringify(storedPin(wirePin(b)))
}

/** A fresh copy of a stored pin (no key for an absent field). */
export function copyPin (pin: FilePin): FilePin {
  const out: FilePin = { policy: pin.policy }
  if (pin.manifest !== undefined) out.manifest = pin.manifest
  if (pin.cold !== undefined) out.cold = { ...pin.cold }
  return out
}
