/**
 * Errors of the S3 cold tier. Each has a stable `name` (callers test
 * `err.name`) and carries where it happened — endpoint, bucket, object key,
 * the S3 error code and HTTP status — but never credentials.
 *
 * @module
 */
import { ShoalError } from '../errors.js'

/** Where a tier failure happened. Safe to print and to send over the API. */
export interface TierErrorContext {
  /** The S3 endpoint URL (never with user info: the client refuses those). */
  endpoint: string
  bucket: string
  /** The object concerned, when there is one. */
  key?: string
  /** The S3 operation (`HeadBucket`, `UploadPart`, `GetObject`…). */
  operation?: string
  /** The S3 error code or the network error code (`NoSuchKey`, `ECONNREFUSED`…). */
  code?: string
  /** The HTTP status of the S3 answer, when there was one. */
  httpStatus?: number
}

/** Base class of every tier error: an S3 request or a cold object went wrong. */
export class TierError extends ShoalError {
  override name = 'TierError'
  /** The tier is upstream of the API: its failures are a bad gateway. */
  override readonly status: number = 502
  readonly endpoint: string
  readonly bucket: string
  readonly key?: string
  readonly operation?: string
  readonly code?: string
  readonly httpStatus?: number

  constructor (message: string, context: TierErrorContext, options?: ErrorOptions) {
    super(message, options)
    this.endpoint = context.endpoint
    this.bucket = context.bucket
    this.key = context.key
    this.operation = context.operation
    this.code = context.code
    this.httpStatus = context.httpStatus
  }
}

/** The endpoint could not be reached, or dropped the connection, or did not answer in time. */
export class TierUnreachableError extends TierError {
  override name = 'TierUnreachableError'
  override readonly status = 503
}

/** No credentials were found, or the endpoint refused them (unknown key, bad signature, 403). */
export class TierCredentialsError extends TierError {
  override name = 'TierCredentialsError'
}

/** The tier's bucket does not exist at the endpoint. */
export class TierBucketNotFoundError extends TierError {
  override name = 'TierBucketNotFoundError'
}

/** An object of a cold copy (its CAR or its index) is not in the bucket. */
export class TierObjectNotFoundError extends TierError {
  override name = 'TierObjectNotFoundError'
}

/** Any other failed S3 request (throttled, server error, unexpected answer…). */
export class TierRequestError extends TierError {
  override name = 'TierRequestError'
}

/**
 * An object of a cold copy that is not what was written: truncated, replaced,
 * altered (a block or the index does not match its hash) or malformed.
 */
export class TierCorruptObjectError extends TierError {
  override name = 'TierCorruptObjectError'
}

/** A cold location (from the namespace or the API) that is malformed. */
export class InvalidColdLocationError extends ShoalError {
  override name = 'InvalidColdLocationError'
  override readonly status = 422
}

/** Bytes that are not a valid cold index (see `node/tiers/format.ts`). */
export class InvalidColdIndexError extends ShoalError {
  override name = 'InvalidColdIndexError'
  override readonly status = 422
}
