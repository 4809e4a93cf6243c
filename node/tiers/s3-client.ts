/**
 * The S3 client of the cold tier: one bucket (and key prefix) at one
 * endpoint, bounded timeouts and retries, and every SDK failure turned into a
 * typed {@link TierError} whose one-line message names the endpoint, the
 * bucket and what to check.
 *
 * @module
 */
import { Readable } from 'node:stream'
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3'
import { TierConfigSchema, type TierConfig } from './config.js'
import { AbortedError, InvalidArgumentError, ShoalError, TooLargeError } from '../errors.js'
import {
  TierBucketNotFoundError,
  TierCredentialsError,
  TierObjectNotFoundError,
  TierRequestError,
  TierUnreachableError,
  type TierErrorContext
} from './errors.js'

const MiB = 1024 * 1024

/** S3's smallest multipart part (except the last). */
export const MIN_PART_SIZE = 5 * MiB
/** Default multipart part size. */
export const DEFAULT_PART_SIZE = 8 * MiB
/** S3's largest number of parts in one multipart upload. */
export const MAX_PARTS = 10_000

export { TierConfigSchema, type TierConfig } from './config.js'

/** The SDK's modules this client uses. */
interface Sdk {
  s3: typeof import('@aws-sdk/client-s3')
  storage: typeof import('@aws-sdk/lib-storage')
}

let sdkLoad: Promise<Sdk> | undefined

/**
 * The AWS SDK, imported on first use, once per process. Imported with the
 * module, it cost every daemon start ~0.15 CPU-s and as much time before it
 * was ready (the SDK is thousands of modules), with or without a cold tier.
 */
async function sdk (): Promise<Sdk> {
  sdkLoad ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([s3, storage]) => ({ s3, storage }))
  return await sdkLoad
}

/** How the client talks to the endpoint. */
export interface TierClientOptions {
  /**
   * Credentials, or a provider of them. Tests and embedders only: Shoal
   * itself never sets this, so credentials come from the SDK's default chain.
   *
   * @default the SDK's default chain: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`
   * (and `AWS_SESSION_TOKEN`), `AWS_PROFILE` and the shared files `~/.aws/credentials`
   * and `~/.aws/config`, then SSO, process, web identity and instance metadata
   */
  credentials?: S3ClientConfig['credentials']
  /** Attempts per request, the first included, with exponential backoff and jitter. @default 4 */
  maxAttempts?: number
  /** Milliseconds to open a connection. @default 5000 */
  connectionTimeoutMs?: number
  /** Milliseconds from sending a request (its body included) to the answer's headers. @default 120000 */
  requestTimeoutMs?: number
  /** Milliseconds a connection may stay silent (a stalled body). @default 30000 */
  socketTimeoutMs?: number
  /**
   * Milliseconds from sending a read (HeadBucket, HeadObject, GetObject: no
   * body to send) to its answer's headers; past it the read fails with
   * {@link TierUnreachableError} and is not retried. A hung endpoint held
   * every read for `requestTimeoutMs` (two minutes) without it; the body of
   * the answer is bounded by `socketTimeoutMs` instead. @default 30000
   */
  answerTimeoutMs?: number
  /** Multipart part size in bytes (≥ 5 MiB); each part in flight is held in memory. @default 8 MiB */
  partSize?: number
  /** Parts uploaded at once. @default 4 */
  queueSize?: number
}

/** A tier as it may be shown to a user: no credentials, ever. */
export interface TierDescription {
  endpoint: string
  bucket: string
  prefix: string
  region: string
}

/** An object's body being downloaded. */
export interface ObjectBody {
  /** The bytes, as they arrive (network errors are thrown as tier errors). */
  body: AsyncIterable<Uint8Array>
  /** Bytes the answer announces. */
  length: number
  /** Size of the whole object, when the answer says it (ranged GETs). */
  objectSize?: number
  /** Stop downloading and free the connection (when `body` will not be read to its end). */
  cancel: () => void
}

/** One object listed under the prefix. */
export interface ListedObject {
  key: string
  size: number
}

/** Options of {@link TierClient.upload}. */
export interface UploadOptions {
  signal?: AbortSignal
  /** Part size for this upload (≥ 5 MiB). @default the client's */
  partSize?: number
}

/**
 * The `code` of a {@link TierUnreachableError} for a read the endpoint did
 * not answer within `answerTimeoutMs`: such a read is not tried again (a
 * broken body, code of the network's, is).
 */
export const ANSWER_TIMEOUT_CODE = 'AnswerTimeout'

/** Network error codes that mean "the endpoint cannot be reached (right now)". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND',
  'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'TimeoutError', 'RequestTimeout'
])

/** S3 error names that mean the credentials were refused. */
const CREDENTIAL_CODES = new Set([
  'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken', 'ExpiredToken',
  'TokenRefreshRequired', 'InvalidClientTokenId', 'Forbidden'
])

/**
 * Check an endpoint URL: http or https, no user info (credentials never go
 * in a URL), no query or fragment. Returns it without a trailing slash.
 *
 * @throws {InvalidArgumentError} naming what is wrong
 */
export function parseEndpoint (endpoint: string): string {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new InvalidArgumentError(`invalid S3 endpoint "${endpoint.slice(0, 200)}": expected a URL such as https://s3.example.com or http://127.0.0.1:9000`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`invalid S3 endpoint: protocol ${url.protocol} is not http: or https:`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidArgumentError('invalid S3 endpoint: it holds user info; give credentials through AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the shared credentials file, never in the URL')
  }
  if (url.search !== '' || url.hash !== '') {
    throw new InvalidArgumentError('invalid S3 endpoint: it must not have a query or a fragment')
  }
  return url.toString().replace(/\/+$/, '')
}

/** `prefix` with exactly one trailing `/` (or `''`): keys are `prefix + name`. */
export function normalizePrefix (prefix: string | undefined): string {
  if (prefix === undefined || prefix === '') return ''
  return prefix.replace(/\/+$/, '') + '/'
}

/** One line of at most 200 characters from an S3 or network message. */
function oneLine (text: unknown): string {
  const line = String(text ?? '').replace(/\s+/g, ' ').trim()
  return line.length > 200 ? `${line.slice(0, 197)}...` : line
}

/** The error code of an SDK or network error, looking through `cause` a few levels. */
function codeOf (err: any): string | undefined {
  for (let e = err, depth = 0; e != null && depth < 4; e = e.cause, depth++) {
    const code = e.code ?? e.Code
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code
    if (typeof e.name === 'string' && NETWORK_CODES.has(e.name)) return e.name
  }
  const code = err?.Code ?? err?.code ?? err?.name
  return typeof code === 'string' ? code : undefined
}

/** What the failed request was about, for {@link toTierError}. */
export interface FailedRequest extends TierErrorContext {
  /** The request addressed the bucket itself (a 404 then means the bucket is missing). */
  bucketLevel?: boolean
  signal?: AbortSignal
}

/**
 * Turn whatever the SDK (or the network, or lib-storage) threw into a typed
 * error with a one-line message. Shoal's own errors (from a block source, a
 * hash check…) pass through unchanged.
 */
export function toTierError (err: unknown, request: FailedRequest): Error {
  if (err instanceof ShoalError) return err
  const e = err as any
  const { signal, bucketLevel, ...context } = request
  const { endpoint, bucket, key, operation } = context
  if (signal?.aborted === true || e?.name === 'AbortError') {
    return new AbortedError(`${operation ?? 'S3 request'} aborted`, { cause: err })
  }
  const code = codeOf(e)
  const httpStatus: number | undefined = e?.$metadata?.httpStatusCode
  const ctx: TierErrorContext = { ...context, code, httpStatus }
  const what = key === undefined ? `bucket "${bucket}"` : `"${key}" in bucket "${bucket}"`
  if (code !== undefined && NETWORK_CODES.has(code)) {
    return new TierUnreachableError(`S3 endpoint ${endpoint} is unreachable or did not answer in time (${code}, ${operation ?? 'request'}): check the endpoint URL, the network and that the server is running`, ctx, { cause: err })
  }
  if (e?.name === 'CredentialsProviderError') {
    return new TierCredentialsError(`no S3 credentials found for ${endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with the shared credentials file`, ctx, { cause: err })
  }
  if ((code !== undefined && CREDENTIAL_CODES.has(code)) || httpStatus === 403) {
    return new TierCredentialsError(`S3 endpoint ${endpoint} refused the credentials for bucket "${bucket}" (${code ?? 'HTTP 403'}, ${operation ?? 'request'}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the shared credentials file, and the bucket's permissions`, ctx, { cause: err })
  }
  if (code === 'NoSuchBucket' || (httpStatus === 404 && bucketLevel === true)) {
    return new TierBucketNotFoundError(`bucket "${bucket}" does not exist at ${endpoint}: create it, or check the tier's bucket name and endpoint`, ctx, { cause: err })
  }
  if (code === 'NoSuchKey' || (httpStatus === 404 && key !== undefined)) {
    return new TierObjectNotFoundError(`object "${key ?? ''}" is missing from bucket "${bucket}" at ${endpoint}: the cold copy was deleted or never completed; push it again from a hot copy`, ctx, { cause: err })
  }
  const status = httpStatus === undefined ? '' : `, HTTP ${httpStatus}`
  const detail = oneLine(e?.message)
  return new TierRequestError(`S3 ${operation ?? 'request'} on ${what} at ${endpoint} failed (${code ?? 'error'}${status})${detail === '' ? '' : `: ${detail}`}`, ctx, { cause: err })
}

/** Destroy a response body stream (frees its connection); a no-op when it is done. */
function destroyBody (body: unknown): void {
  (body as { destroy?: () => void } | undefined)?.destroy?.()
}

/** `Content-Range: bytes a-b/TOTAL` → TOTAL. */
function objectSizeOf (contentRange: string | undefined): number | undefined {
  const match = /\/(\d+)$/.exec(contentRange ?? '')
  return match === null ? undefined : Number(match[1])
}

/**
 * One bucket (and key prefix) at one S3-compatible endpoint.
 *
 * The SDK client is built with `forcePathStyle` and with request checksums
 * and response checksum validation only when an operation requires them:
 * with the SDK's defaults, some S3-compatible servers store a streamed
 * PutObject with its aws-chunked framing, silently corrupted. Integrity is
 * Shoal's business anyway: every block is hash-checked on read.
 *
 * Credentials come from the SDK's default provider chain unless
 * {@link TierClientOptions.credentials} says otherwise; they are never
 * logged, put in an error or returned.
 */
export class TierClient {
  /** The endpoint URL (without user info). */
  readonly endpoint: string
  readonly bucket: string
  /** `''` or a prefix ending in `/`. */
  readonly prefix: string
  readonly region: string
  private s3?: S3Client
  private readonly s3Config: S3ClientConfig
  private readonly partSize: number
  private readonly answerTimeoutMs: number
  private readonly queueSize: number

  /** @throws {InvalidArgumentError} for a malformed config or option */
  constructor (config: TierConfig, options: TierClientOptions = {}) {
    const parsed = TierConfigSchema.safeParse(config)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw new InvalidArgumentError(`invalid tier ${issue?.path.join('.') ?? 'config'}: ${issue?.message ?? 'malformed'}`)
    }
    this.endpoint = parseEndpoint(config.endpoint)
    this.bucket = config.bucket
    this.prefix = normalizePrefix(config.prefix)
    this.region = config.region ?? 'us-east-1'
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE
    this.queueSize = options.queueSize ?? 4
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART_SIZE) {
      throw new InvalidArgumentError(`part size ${this.partSize} is below S3's minimum of ${MIN_PART_SIZE} bytes`)
    }
    if (!Number.isSafeInteger(this.queueSize) || this.queueSize < 1 || this.queueSize > 64) {
      throw new InvalidArgumentError(`queue size ${this.queueSize} is not between 1 and 64`)
    }
    this.answerTimeoutMs = options.answerTimeoutMs ?? 30_000
    if (!(this.answerTimeoutMs > 0)) throw new InvalidArgumentError(`answer timeout ${this.answerTimeoutMs} ms is not positive`)
    const maxAttempts = options.maxAttempts ?? 4
    if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 10) {
      throw new InvalidArgumentError(`maxAttempts ${maxAttempts} is not between 1 and 10`)
    }
    this.s3Config = {
      endpoint: this.endpoint,
      region: this.region,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      maxAttempts,
      retryMode: 'standard',
      requestHandler: {
        connectionTimeout: options.connectionTimeoutMs ?? 5_000,
        requestTimeout: options.requestTimeoutMs ?? 120_000,
        throwOnRequestTimeout: true,
        socketTimeout: options.socketTimeoutMs ?? 30_000
      }
    }
  }

  /** The SDK client (built at the first request), for what this class does not cover. */
  async sdkClient (): Promise<S3Client> {
    return (await this.loaded()).client
  }

  /** The SDK's modules and this tier's client, both made at the first request. */
  private async loaded (): Promise<Sdk & { client: S3Client }> {
    const modules = await sdk()
    this.s3 ??= new modules.s3.S3Client(this.s3Config)
    return { ...modules, client: this.s3 }
  }

  /** The tier, safe to print or return from the API. */
  describe (): TierDescription {
    return { endpoint: this.endpoint, bucket: this.bucket, prefix: this.prefix, region: this.region }
  }

  /** The object key of `name` under the prefix. */
  keyFor (name: string): string {
    return this.prefix + name
  }

  /**
   * Run one read (no body to send), turning its failures into tier errors:
   * `send` gets the signal to pass to the SDK, which also fires when no
   * answer came within `answerTimeoutMs` (then {@link TierUnreachableError}).
   */
  private async read<T>(operation: string, key: string | undefined, signal: AbortSignal | undefined, send: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    const deadline = new AbortController()
    const timer = setTimeout(() => { deadline.abort() }, this.answerTimeoutMs)
    const abortSignal = signal === undefined ? deadline.signal : AbortSignal.any([signal, deadline.signal])
    try {
      return await this.call(operation, key, signal, async () => await send(abortSignal))
    } catch (err) {
      if (deadline.signal.aborted && signal?.aborted !== true) {
        throw new TierUnreachableError(`S3 endpoint ${this.endpoint} did not answer ${operation} within ${this.answerTimeoutMs} ms (bucket "${this.bucket}"${key === undefined ? '' : `, key "${key}"`}): check that the server is running and not overloaded`,
          { endpoint: this.endpoint, bucket: this.bucket, key, operation, code: ANSWER_TIMEOUT_CODE }, { cause: err })
      }
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  /** Run one SDK call, turning its failures into tier errors. */
  private async call<T>(operation: string, key: string | undefined, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    if (signal?.aborted === true) throw new AbortedError(`${operation} aborted`)
    try {
      return await fn()
    } catch (err) {
      throw toTierError(err, { endpoint: this.endpoint, bucket: this.bucket, key, operation, signal, bucketLevel: key === undefined })
    }
  }

  /** Yield `body`'s chunks, turning a failure mid-body into a tier error. */
  private async * guarded (body: unknown, operation: string, key: string, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of body as AsyncIterable<Uint8Array>) yield chunk
    } catch (err) {
      throw toTierError(err, { endpoint: this.endpoint, bucket: this.bucket, key, operation, signal })
    } finally {
      // stopping early must free the connection
      destroyBody(body)
    }
  }

  /**
   * Check that the bucket exists and that the credentials are accepted.
   *
   * @throws {TierBucketNotFoundError} {@link TierCredentialsError} {@link TierUnreachableError} {@link TierRequestError}
   */
  async checkBucket (signal?: AbortSignal): Promise<void> {
    const { s3, client } = await this.loaded()
    await this.read('HeadBucket', undefined, signal, async abortSignal => await client.send(new s3.HeadBucketCommand({ Bucket: this.bucket }), { abortSignal }))
  }

  /**
   * Size (and ETag) of an object.
   *
   * @throws {TierObjectNotFoundError} when it is missing, {@link TierBucketNotFoundError}
   * when the bucket is
   */
  async head (key: string, signal?: AbortSignal): Promise<{ size: number, etag?: string }> {
    const { s3, client } = await this.loaded()
    try {
      const out = await this.read('HeadObject', key, signal, async abortSignal => await client.send(new s3.HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }))
      return { size: Number(out.ContentLength ?? -1), etag: out.ETag }
    } catch (err) {
      // a HEAD answer has no body: a 404 does not say whether the key or the bucket is missing
      if ((err as Error).name === 'TierObjectNotFoundError') await this.checkBucket(signal)
      throw err
    }
  }

  /** Bytes `[start, end)` of an object, streamed; the answer may be shorter if the object is. */
  async getRange (key: string, start: number, end: number, signal?: AbortSignal): Promise<ObjectBody> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start) {
      throw new InvalidArgumentError(`invalid byte range [${start}, ${end})`)
    }
    const { s3, client } = await this.loaded()
    const out = await this.read('GetObject', key, signal, async abortSignal => await client.send(new s3.GetObjectCommand({
      Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end - 1}`
    }), { abortSignal }))
    return {
      body: this.guarded(out.Body, 'GetObject', key, signal),
      length: Number(out.ContentLength ?? 0),
      objectSize: objectSizeOf(out.ContentRange),
      cancel: () => { destroyBody(out.Body) }
    }
  }

  /** A whole object, streamed. */
  async getObject (key: string, signal?: AbortSignal): Promise<ObjectBody> {
    const { s3, client } = await this.loaded()
    const out = await this.read('GetObject', key, signal, async abortSignal => await client.send(new s3.GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }))
    const length = Number(out.ContentLength ?? 0)
    return { body: this.guarded(out.Body, 'GetObject', key, signal), length, objectSize: length, cancel: () => { destroyBody(out.Body) } }
  }

  /**
   * A small object in one buffer.
   *
   * @throws {TooLargeError} when it is over `maxBytes` (nothing more is read)
   */
  async getBytes (key: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array> {
    const { body, length, cancel } = await this.getObject(key, signal)
    const parts: Uint8Array[] = []
    let size = 0
    if (length > maxBytes) {
      cancel()
      throw new TooLargeError(`object "${key}" is ${length} bytes, over the limit of ${maxBytes}`)
    }
    for await (const part of body) {
      size += part.byteLength
      if (size > maxBytes) throw new TooLargeError(`object "${key}" is over the limit of ${maxBytes} bytes`)
      parts.push(part)
    }
    return new Uint8Array(Buffer.concat(parts))
  }

  /** Write a small object in one PutObject. */
  async putBytes (key: string, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    const { s3, client } = await this.loaded()
    await this.call('PutObject', key, signal, async () => await client.send(new s3.PutObjectCommand({
      Bucket: this.bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength
    }), { abortSignal: signal }))
  }

  /**
   * Stream `source` into an object: one PutObject when it fits in one part,
   * else a multipart upload (parts retried by the SDK, aborted on failure so
   * no orphan parts are left). At most `queueSize` parts are in memory.
   * An error thrown by `source` is rethrown unchanged.
   */
  async upload (key: string, source: AsyncIterable<Uint8Array>, options: UploadOptions = {}): Promise<void> {
    const { signal } = options
    const partSize = options.partSize ?? this.partSize
    if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE) {
      throw new InvalidArgumentError(`part size ${partSize} is below S3's minimum of ${MIN_PART_SIZE} bytes`)
    }
    let sourceError: unknown
    // only what the source's own `next()` throws is the source's error. An upload that fails stops reading the body,
    // and the stream it read then throws an AbortError into this generator at its `yield`: taken for the source's
    // (a `yield *` passes it on, and the source rethrows it), it hid the upload's own error, so a push whose S3
    // endpoint went down mid-way failed as "The operation was aborted" (InternalError), not TierUnreachableError
    async function * watched (): AsyncGenerator<Uint8Array> {
      const it = source[Symbol.asyncIterator]()
      let done = false
      try {
        while (true) {
          let step: IteratorResult<Uint8Array>
          try {
            step = await it.next()
          } catch (err) {
            done = true
            sourceError = err
            throw err
          }
          if (step.done === true) { done = true; return }
          yield step.value
        }
      } finally {
        // the reader gave up (the upload failed or was aborted): the source stops too, as a `for await` would
        if (!done) await it.return?.()
      }
    }
    const { storage, client } = await this.loaded()
    const body = Readable.from(watched(), { objectMode: false, highWaterMark: MiB })
    const upload = new storage.Upload({
      client,
      params: { Bucket: this.bucket, Key: key, Body: body },
      partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false
    })
    const onAbort = (): void => { void upload.abort() }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      await this.call('Upload', key, signal, async () => await upload.done())
    } catch (err) {
      throw sourceError ?? err
    } finally {
      signal?.removeEventListener('abort', onAbort)
      body.destroy()
    }
  }

  /**
   * Every object under `prefix` (the client's prefix by default), page by
   * page, at most `maxObjects`.
   */
  async * list (options: { prefix?: string, signal?: AbortSignal, maxObjects?: number } = {}): AsyncGenerator<ListedObject> {
    const { signal } = options
    const max = options.maxObjects ?? Number.MAX_SAFE_INTEGER
    let token: string | undefined
    let listed = 0
    const { s3, client } = await this.loaded()
    do {
      const page = await this.call('ListObjectsV2', undefined, signal, async () => await client.send(new s3.ListObjectsV2Command({
        Bucket: this.bucket, Prefix: options.prefix ?? this.prefix, ContinuationToken: token, MaxKeys: 1000
      }), { abortSignal: signal }))
      for (const object of page.Contents ?? []) {
        if (listed >= max) return
        listed++
        yield { key: object.Key ?? '', size: Number(object.Size ?? 0) }
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined && listed < max)
  }

  /** Delete an object; deleting a missing one is not an error (S3 semantics). */
  async delete (key: string, signal?: AbortSignal): Promise<void> {
    const { s3, client } = await this.loaded()
    await this.call('DeleteObject', key, signal, async () => await client.send(new s3.DeleteObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal }))
  }

  /** Close the client's connections. */
  destroy (): void {
    this.s3?.destroy()
  }
}

/**
 * Build the client of a tier.
 *
 * @throws {InvalidArgumentError} for a malformed endpoint, bucket, prefix, region or option
 */
export function createTierClient (config: TierConfig, options: TierClientOptions = {}): TierClient {
  return new TierClient(config, options)
}
