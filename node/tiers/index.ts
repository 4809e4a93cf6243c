/**
 * The S3 cold tier: push a file's DAG to an S3-compatible bucket as a CARv1
 * plus a block-offset index, read it back block by block through ranged GETs
 * (hash-checked), probe the tier, delete a copy. See `docs/tier.md`.
 *
 * @module
 */
export {
  createTierClient, TierClient, TierConfigSchema, toTierError, parseEndpoint, normalizePrefix,
  MIN_PART_SIZE, DEFAULT_PART_SIZE, MAX_PARTS,
  type TierConfig, type TierClientOptions, type TierDescription, type ObjectBody, type ListedObject, type UploadOptions, type FailedRequest
} from './s3-client.js'
export {
  pushCold, verifyCold,
  type PushColdOptions, type PushColdResult, type PushColdProgressEvents, type VerifyColdOptions, type VerifyMode, type ColdVerification
} from './archive.js'
export { ColdReader, loadColdIndex, type ColdReaderOptions, type ColdReadStats } from './cold-reader.js'
export { probeTier, deleteCold, type TierProbe, type TierProbeState, type TierUsage, type ProbeTierOptions } from './probe.js'
export { ColdLocationSchema, parseColdLocation, coldObjectNames, COLD_LOCATION_VERSION, type ColdLocation } from './location.js'
export {
  encodeColdIndex, decodeColdIndex, CarSectionScanner, COLD_INDEX_VERSION,
  type ColdIndex, type ColdIndexEntry, type ColdIndexExpectations
} from './format.js'
export {
  TierError, TierUnreachableError, TierCredentialsError, TierBucketNotFoundError, TierObjectNotFoundError,
  TierRequestError, TierCorruptObjectError, InvalidColdLocationError, InvalidColdIndexError,
  type TierErrorContext
} from './errors.js'
