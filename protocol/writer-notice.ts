/**
 * The writer notice: what a node sends a connected peer whose namespace
 * writes it refuses because it does not trust that peer as a writer
 * (node/namespace/trust.ts), on its own stream of {@link NOTICE_PROTOCOL},
 * one message per stream.
 *
 * It is not signed: the stream's connection authenticates the sender (the
 * libp2p handshake proves its peer id), and the notice says only something
 * about the sender's own view ("I do not apply your entries").
 *
 * dag-cbor `{ v: 1, type: 'refused', applied }`: `applied`, how many of the
 * receiver's entries the sender did apply (its counter of the receiver in
 * its clock, from before it stopped trusting it). The receiver knows the
 * refusal ended when it hears the sender's clock name more of its entries.
 * Strict: exactly these fields, at most {@link MAX_NOTICE_BYTES} bytes;
 * anything else throws {@link InvalidMessageError}.
 *
 * @module
 */
import * as dagCbor from '@ipld/dag-cbor'
import { InvalidMessageError } from './errors.js'
import { isPlainMap } from './values.js'

/** The libp2p protocol id of writer notices. */
export const NOTICE_PROTOCOL = '/shoal/ns-notice/1.0.0'

/** Largest encoded notice (bytes); a longer one is malformed. */
export const MAX_NOTICE_BYTES = 128

/** A writer notice. */
export interface WriterNotice {
  v: 1
  /** `refused`: the sender does not apply the receiver's namespace entries (it does not trust it as a writer). */
  type: 'refused'
  /** How many of the receiver's entries the sender applied (a counter, 0 when none). */
  applied: number
}

/**
 * Encode a writer notice (checked first).
 *
 * @throws {InvalidMessageError} when it is not valid
 */
export function encodeWriterNotice (notice: WriterNotice): Uint8Array {
  const bytes = dagCbor.encode(pick(notice))
  if (bytes.byteLength > MAX_NOTICE_BYTES) throw new InvalidMessageError(`writer notice of ${bytes.byteLength} bytes, at most ${MAX_NOTICE_BYTES}`)
  return bytes
}

/**
 * Decode and validate a writer notice.
 *
 * @throws {InvalidMessageError} for anything malformed
 */
export function decodeWriterNotice (bytes: Uint8Array): WriterNotice {
  if (!(bytes instanceof Uint8Array)) throw new InvalidMessageError('writer notice is not bytes')
  if (bytes.byteLength > MAX_NOTICE_BYTES) throw new InvalidMessageError(`writer notice of ${bytes.byteLength} bytes, at most ${MAX_NOTICE_BYTES}`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new InvalidMessageError(`writer notice is not dag-cbor (${String(err?.message ?? err)})`)
  }
  return pick(value)
}

function pick (value: unknown): WriterNotice {
  if (!isPlainMap(value)) throw new InvalidMessageError('writer notice is not a map')
  const keys = Object.keys(value).sort()
  if (keys.join() !== 'applied,type,v') throw new InvalidMessageError(`writer notice has fields ${keys.join(', ')}, not applied, type, v`)
  if (value.v !== 1) throw new InvalidMessageError('writer notice of an unknown version')
  if (value.type !== 'refused') throw new InvalidMessageError('writer notice of an unknown type')
  const applied = value.applied
  if (typeof applied !== 'number' || !Number.isSafeInteger(applied) || applied < 0) throw new InvalidMessageError('writer notice: applied is not a counter')
  return { v: 1, type: 'refused', applied }
}
