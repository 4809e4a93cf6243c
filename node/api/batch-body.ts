/**
 * Reads a batch body (protocol/add-batch.ts) from a request: the manifest
 * first, then each file's bytes as a source of its own, in the manifest's
 * order, so `Files.addMany` imports them one after the other without holding
 * the body in memory.
 *
 * A body whose length is not the one its manifest gives is refused before
 * any file is read; one that ends early fails the source it ends in, and so
 * the whole batch (nothing of it is bound).
 *
 * @module
 */
import { reader, type Reader } from 'it-reader'
import { InvalidArgumentError } from '../errors.js'
import { batchBodyLength, decodeManifest, manifestLength, MAX_BATCH_BYTES, type BatchFile } from '../../protocol/add-batch.js'

/** Largest piece of a file handed to the importer at once. */
const PIECE_BYTES = 256 * 1024

/** A batch: its files, and their contents in the same order. */
export interface BatchBody {
  files: BatchFile[]
  /** One per file; each must be read to its end before the next is begun. */
  sources: Array<AsyncIterable<Uint8Array>>
}

/**
 * Read a batch's manifest from `body` and check the body's length.
 *
 * @param length - the request's Content-Length (a batch must send one)
 * @throws {InvalidArgumentError} for a missing or wrong length, or a bad manifest
 */
export async function readBatchBody (body: AsyncIterable<Uint8Array>, length: number | undefined): Promise<BatchBody> {
  if (length === undefined) throw new InvalidArgumentError('a batch body needs a Content-Length')
  if (length > MAX_BATCH_BYTES) throw new InvalidArgumentError(`a batch body may hold at most ${MAX_BATCH_BYTES} bytes, this one ${length}: add large files one by one`)
  const bytes = reader(body)
  const manifestBytes = manifestLength(await exactly(bytes, 4, 'its manifest\'s length'))
  if (4 + manifestBytes > length) throw new InvalidArgumentError(`the batch manifest's length (${manifestBytes} bytes) passes the body's (${length})`)
  const files = decodeManifest(await exactly(bytes, manifestBytes, 'its manifest'))
  const expected = batchBodyLength(manifestBytes, files)
  if (expected !== length) throw new InvalidArgumentError(`the batch body is ${length} bytes, its manifest says ${expected}`)
  let next = 0
  const sources = files.map((file, i) => (async function * () {
    if (next !== i) throw new InvalidArgumentError(`file ${i} of the batch was read out of order`)
    for (let left = file.size; left > 0;) {
      const n = Math.min(left, PIECE_BYTES)
      yield await exactly(bytes, n, `file ${file.to}`)
      left -= n
    }
    next = i + 1
  })())
  return { files, sources }
}

/** The next `n` bytes of `bytes`, as one array. */
async function exactly (bytes: Reader, n: number, what: string): Promise<Uint8Array> {
  let got
  try {
    got = await bytes.next(n)
  } catch (err: any) {
    if (err?.code === 'ERR_UNDER_READ') throw new InvalidArgumentError(`the batch body ended inside ${what}`)
    throw err
  }
  if (got.done === true || got.value.byteLength !== n) throw new InvalidArgumentError(`the batch body ended inside ${what}`)
  return got.value.subarray()
}
