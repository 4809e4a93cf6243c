/**
 * Where a cold copy lives: a plain, serialisable record that the namespace
 * carries next to a file (JSON or dag-cbor), and the object keys it names.
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import { z } from 'zod'
import { InvalidColdLocationError } from './errors.js'

/** Version of the {@link ColdLocation} record. */
export const COLD_LOCATION_VERSION = 1

const size = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const cidString = z.string().max(200).refine(text => {
  try {
    CID.parse(text)
    return true
  } catch {
    return false
  }
}, 'must be a CID')
const key = z.string().min(1).max(1024)

/** Schema of a {@link ColdLocation} (validate anything read from the namespace or the API). */
export const ColdLocationSchema = z.object({
  /** Record version. */
  v: z.literal(COLD_LOCATION_VERSION),
  /** Root CID of the file's DAG. */
  root: cidString,
  /** Bucket holding both objects (the endpoint is the tier's, not the record's). */
  bucket: z.string().min(1).max(255),
  /** Key of the CARv1 object (prefix included). */
  carKey: key,
  /** Size of the CAR object in bytes. */
  carSize: size,
  /** Key of the index object (prefix included). */
  indexKey: key,
  /** Size of the index object in bytes. */
  indexSize: size,
  /** dag-cbor CID of the index object: what makes the whole copy verifiable. */
  indexCid: cidString,
  /** Blocks in the CAR. */
  blocks: size,
  /** Bytes of block data in the CAR (the CAR minus its framing). */
  blockBytes: size
}).strict()

/**
 * A verified cold copy of a file: two objects in a bucket, a CARv1 of the
 * file's DAG and a block-offset index whose CID is recorded here, so that a
 * reader can check the index, and through it every block. No endpoint and
 * no credentials: those belong to the tier's configuration.
 */
export type ColdLocation = z.infer<typeof ColdLocationSchema>

/**
 * Check a cold location read from an untrusted place (the namespace, the API).
 *
 * @throws {InvalidColdLocationError} naming the first bad field
 */
export function parseColdLocation (value: unknown): ColdLocation {
  const parsed = ColdLocationSchema.safeParse(value)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  throw new InvalidColdLocationError(`invalid cold location: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'malformed'}`.trim())
}

/**
 * File names of a root's two objects; keys are the tier's prefix plus these.
 * Named by the root exactly as given (a CIDv0 and a CIDv1 root give CARs whose
 * headers differ, so they must not share a key).
 */
export function coldObjectNames (root: CID): { car: string, index: string } {
  const name = root.toString()
  return { car: `${name}.car`, index: `${name}.car.idx` }
}
