/**
 * A file's pin in its two forms: stored (what `Namespace` callers see: CIDs
 * as strings, JSON-friendly) and wire (what log entries carry: CIDs as
 * links), and the check of a caller's pin.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { isCodedPolicy } from '../../protocol/durability.js'
import { isPinPolicy, type ColdCopy, type Pin } from '../../protocol/namespace.js'
import { InvalidArgumentError } from '../errors.js'
import type { FilePin, StoredColdCopy } from './index.js'

const DAG_CBOR = 0x71

function dagCborSha256 (text: unknown, what: string): CID {
  let parsed: CID | undefined
  try {
    parsed = CID.parse(String(text))
  } catch {}
  if (parsed === undefined || parsed.code !== DAG_CBOR || parsed.multihash.code !== 0x12 || parsed.multihash.size !== 32) {
    throw new InvalidArgumentError(`${what} is a dag-cbor sha2-256 CID, not ${JSON.stringify(text)}`)
  }
  return parsed
}

/**
 * A caller's pin, checked, in wire form (undefined: no pin).
 *
 * @throws {InvalidArgumentError} for a policy that is not canonical, a manifest that does not fit, or a malformed cold copy
 */
export function checkPin (pin: FilePin | undefined | null): Pin | undefined {
  if (pin === undefined || pin === null) return undefined
  if (typeof pin !== 'object') throw new InvalidArgumentError('a pin is { policy, manifest?, cold? }')
  if (!isPinPolicy(pin.policy)) throw new InvalidArgumentError(`not a durability policy: ${JSON.stringify(pin.policy)} (none, ec:K+M or replicas:N)`)
  const out: Pin = { policy: pin.policy }
  if (pin.manifest !== undefined) {
    if (!isCodedPolicy(pin.policy)) {
      throw new InvalidArgumentError(`a stripe manifest goes only with a coded policy (ec:K+M or replicas:N, N >= 2), not ${pin.policy}`)
    }
    out.manifest = dagCborSha256(pin.manifest, 'a stripe manifest')
  }
  if (pin.cold !== undefined) {
    const c = pin.cold
    if (typeof c !== 'object' || c === null) throw new InvalidArgumentError('a cold copy is an object')
    if (typeof c.endpoint !== 'string' || !/^https?:\/\/[^\s/]+$/.test(c.endpoint)) throw new InvalidArgumentError(`a cold copy's endpoint is http(s)://host[:port], not ${JSON.stringify(c.endpoint)}`)
    for (const k of ['bucket', 'carKey', 'indexKey'] as const) {
      if (typeof c[k] !== 'string' || c[k].length === 0 || c[k].length > 1024) throw new InvalidArgumentError(`a cold copy's ${k} must be a non-empty string`)
    }
    for (const k of ['carSize', 'indexSize', 'blocks', 'blockBytes'] as const) {
      if (!Number.isSafeInteger(c[k]) || c[k] < 0) throw new InvalidArgumentError(`a cold copy's ${k} must be a non-negative integer`)
    }
    if (c.region !== undefined && (typeof c.region !== 'string' || c.region.length === 0 || c.region.length > 64)) throw new InvalidArgumentError('a cold copy\'s region must be a short non-empty string')
    out.cold = wireCold(c)
    out.cold.indexCid = dagCborSha256(c.indexCid, 'a cold index')
  }
  return out
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

/** A fresh copy of a stored pin (no key for an absent field). */
export function copyPin (pin: FilePin): FilePin {
  const out: FilePin = { policy: pin.policy }
  if (pin.manifest !== undefined) out.manifest = pin.manifest
  if (pin.cold !== undefined) out.cold = { ...pin.cold }
  return out
}
