/**
 * Small pure helpers the wire codecs share: they look at untrusted decoded
 * values without throwing (each codec throws its own typed error).
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { Digest } from 'multiformats/hashes/digest'

/** Multihash code of sha2-256, the only hash Shoal's wire formats accept. */
export const SHA2_256 = 0x12

/** A decoded map's fields. */
export type Fields = Record<string, unknown>

/** True for a plain map (what dag-cbor decodes a CBOR map to): not a list, CID, bytes or class instance. */
export function isPlainMap (value: unknown): value is Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** A short printable form of an untrusted value, for error messages (never walks containers). */
export function show (value: unknown): string {
  let text: string
  if (typeof value === 'string') text = JSON.stringify(value)
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value == null) text = String(value)
  else if (Array.isArray(value)) text = `a list of ${value.length}`
  else text = `a ${typeof value}`
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/** The same bytes as a plain Uint8Array (dag-cbor's encoder may hand back a Buffer), equal to what decoders return. */
export function plainBytes (bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * A fresh, independent copy of a decoded CID value (it shares no memory with
 * the input), or undefined when `value` is not a well-formed CID.
 *
 * A CID of this library (what the decoders give: each builds it with
 * `CID.decode` from the bytes it read, so its fields are those bytes') is
 * copied once, without parsing its bytes again; anything else CID-like is
 * re-decoded from its bytes.
 */
export function freshCid (value: unknown): CID | undefined {
  try {
    if (value instanceof CID) return copyCid(value)
    const given = CID.asCID(value)
    return given === null ? undefined : CID.decode(new Uint8Array(given.bytes))
  } catch {
    return undefined
  }
}

/** `cid` over a copy of its bytes: its multihash and digest are views of the copy, as `CID.decode` makes them. */
function copyCid (cid: CID): CID {
  const bytes = new Uint8Array(cid.bytes)
  const { code, size, digest } = cid.multihash
  const multihash = bytes.subarray(bytes.byteLength - cid.multihash.bytes.byteLength)
  return new CID(cid.version, cid.code, new Digest(code, size, multihash.subarray(multihash.byteLength - digest.byteLength), multihash), bytes)
}

/** True when `cid`'s multihash is a 32-byte sha2-256 digest. */
export function isSha256 (cid: CID): boolean {
  return cid.multihash.code === SHA2_256 && cid.multihash.size === 32 && cid.multihash.digest.byteLength === 32
}

/** True for a safe integer in min..max. */
export function isIntIn (value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max
}

/** True when `fields` has exactly the `keys`, no more and no fewer. */
export function hasExactKeys (fields: Fields, keys: readonly string[]): boolean {
  return Object.keys(fields).length === keys.length && keys.every(key => Object.hasOwn(fields, key))
}

/** True when an optional field is set (an `undefined` value counts as absent). */
export function isSet (fields: Fields, key: string): boolean {
  return Object.hasOwn(fields, key) && fields[key] !== undefined
}
