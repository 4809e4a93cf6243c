/**
 * The content itself, as a browser or `curl` wants it: a file's bytes
 * (ranged reads with `Range`: 206 and `Content-Range`, or
 * `multipart/byteranges` for several ranges; 416 past the end), a
 * directory's `index.html`, or else an HTML listing of the directory. These
 * responses are not verifiable by the client (the gateway is trusted to
 * decode the DAG); IPFS clients ask for raw blocks or CARs instead.
 *
 * A directory URL without a trailing slash is redirected (301) to one with
 * it, so relative links in its pages and listing resolve below it.
 *
 * @module
 */
import { resolveEntry, entrySize } from '../content/index.js'
import { readRange, type ReadAhead } from '../content/ranged-reader.js'
import { byteRangesBody } from './byteranges.js'
import { NotAcceptableError } from './errors.js'
import { answeredNotModified, contentHeaders, sendBody } from './http.js'
import { renderListing } from './listing.js'
import { contentTypeOf, SNIFF_BYTES, typeByName } from './mime.js'
import { parseRangeHeader, rangeIfUnchanged } from './range.js'
import { resolvePath, type ResolvedPath } from './resolve.js'
import type { GatewayContext } from './context.js'
import type { SniffedTypes } from './sniffed-types.js'
import type { BlockGetter } from '../reads/api.js'
import type { UnixFSEntry } from 'ipfs-unixfs-exporter'
import type { CID } from 'multiformats/cid'
import type { OutgoingHttpHeaders } from 'node:http'
import { askedFilename, contentDisposition } from './disposition.js'

/**
 * How far a file's bytes are read ahead of a slow client: less than a
 * local reader's (node/content/ranged-reader.ts), since a gateway has many
 * clients at once and each one's read-ahead is memory held for it.
 */
export const GATEWAY_READ_AHEAD: ReadAhead = { blocks: 4, bytes: 1024 * 1024 }

/** The name a directory's page is served from. */
const INDEX_HTML = 'index.html'

/** Answer the content at the end of the path. */
export async function serveContent (ctx: GatewayContext): Promise<void> {
  const { request, blocks, signal } = ctx
  const resolved = await resolvePath(blocks, request.path, signal)
  const entry = await resolveEntry(blocks, resolved.terminal, signal).catch((err: any) => {
    // a codec the exporter has no decoder for (libp2p-key, dag-jose…): data, not UnixFS
    if (err?.name === 'NoResolverError') throw new NotAcceptableError(`${request.path.text} is data of codec 0x${resolved.terminal.code.toString(16)}, not a UnixFS file or directory: ask for it with ?format=raw`, { cause: err })
    // dag-pb without UnixFS data (a plain IPLD object): data as well, not a failure of the gateway
    if (err?.name === 'NotUnixFSError') throw new NotAcceptableError(`${request.path.text} is dag-pb data that is not UnixFS (${String(err.message)}): ask for it with ?format=raw or ?format=car`, { cause: err })
    throw err
  })
  if (entry.type === 'directory') {
    await serveDirectory(ctx, resolved, entry)
    return
  }
  if (entry.type === 'object') {
    throw new NotAcceptableError(`${request.path.text} is ${entry.cid.code === 0x71 ? 'dag-cbor' : 'IPLD'} data, not a UnixFS file or directory: ask for it with ?format=raw or ?format=car`)
  }
  await serveFile(ctx, resolved, entry, request.path.segments[request.path.segments.length - 1])
}

/** Bytes `[offset, offset + length)` of the file whose root is `cid`, with the gateway's read-ahead. */
async function * readFile (blocks: BlockGetter, cid: CID, offset: number, length: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const root = { cid, bytes: await blocks.getBytes(cid, { signal }) }
  yield * readRange(blocks, root, offset, offset + length, signal, GATEWAY_READ_AHEAD)
}

/** Bytes `[offset, offset + length)` of `bytes` held in memory, as a source. */
async function * sliceOf (bytes: Uint8Array, offset: number, length: number): AsyncGenerator<Uint8Array> {
  if (length > 0) yield bytes.subarray(offset, offset + length)
}

/** `source` with its first chunk made at least `bytes` long (or the whole source, when shorter). */
async function * firstChunkOf (source: AsyncIterable<Uint8Array>, bytes: number): AsyncGenerator<Uint8Array> {
  const held: Uint8Array[] = []
  let size = 0
  let passing = false
  for await (const chunk of source) {
    if (passing) { yield chunk; continue }
    held.push(chunk)
    size += chunk.byteLength
    if (size >= bytes) { yield Buffer.concat(held); passing = true }
  }
  if (!passing && held.length > 0) yield Buffer.concat(held)
}

/**
 * A file's bytes, the whole, one range or several of them (a symlink's:
 * its target, as the path gateway answers it). The type comes from the
 * name, else from the file's first bytes (./sniffed-types.ts remembers it
 * per file): the body's own when it starts at byte 0 and holds them, else
 * a separate small read, so a 200 and a 206 of one file name the same
 * type. Several ranges are sent as one `multipart/byteranges` body
 * (./byteranges.ts), each part naming the type.
 */
async function serveFile (ctx: GatewayContext, resolved: ResolvedPath, entry: UnixFSEntry, name: string | undefined, headersOf = contentHeaders(ctx.request.path, resolved)): Promise<void> {
  const { req, res, request, signal, types } = ctx
  const size = entrySize(entry)
  const etag = `"${resolved.terminal.toString()}"`
  if (answeredNotModified(req, res, etag, headersOf)) return
  const ranges = parseRangeHeader(rangeIfUnchanged(req.headers.range, req.headers['if-range'], etag), { size })
  const range = ranges?.length === 1 ? ranges[0] : undefined
  const offset = range?.first ?? 0
  const length = range === undefined ? size : range.last - range.first + 1
  const content = ctx.contentBlocks(resolved.terminal)
  // a symlink's bytes are its target, held in its own block: the path gateway serves them as the body
  const target = entry.type === 'file' && entry.unixfs.type === 'symlink' ? entry.unixfs.data ?? new Uint8Array(0) : undefined
  const read = (from: number, bytes: number): AsyncGenerator<Uint8Array> => target === undefined ? readFile(content, resolved.terminal, from, bytes, signal) : sliceOf(target, from, bytes)
  const sniffed = Math.min(SNIFF_BYTES, size)
  const disposition = contentDisposition(request.query, name)
  const fileHeaders: OutgoingHttpHeaders = { ...headersOf, etag, 'accept-ranges': 'bytes', ...(disposition === undefined ? {} : { 'content-disposition': disposition }) }
  const known = typeByName(askedFilename(request.query) ?? name) ?? types.get(resolved.terminal)
  if (ranges !== undefined && ranges.length > 1) {
    const body = byteRangesBody({ ranges, size, type: known ?? await sniffStart(ctx, resolved.terminal, read(0, sniffed)), read })
    await sendBody(res, {
      status: 206,
      head: request.head,
      headers: () => ({ ...fileHeaders, 'content-type': body.contentType, 'content-length': body.length }),
      source: body.source
    })
    return
  }
  // the type is sniffed from the body's first chunk when it holds the file's first bytes, else read apart
  const fromBody = known === undefined && offset === 0 && length >= sniffed
  const type = known ?? (fromBody ? undefined : await sniffStart(ctx, resolved.terminal, read(0, sniffed)))
  const body = read(offset, length)
  await sendBody(res, {
    status: range === undefined ? 200 : 206,
    head: request.head,
    headers: (first: Uint8Array | undefined): OutgoingHttpHeaders => ({
      ...fileHeaders,
      'content-type': type ?? sniffedFrom(types, resolved.terminal, first?.subarray(0, sniffed)),
      'content-length': length,
      ...(range === undefined ? {} : { 'content-range': `bytes ${range.first}-${range.last}/${size}` })
    }),
    source: fromBody ? firstChunkOf(body, sniffed) : body
  })
}

/** The type sniffed from a file's first bytes `first`, remembered for the file `cid`. */
function sniffedFrom (types: SniffedTypes, cid: CID, first: Uint8Array | undefined): string {
  const type = contentTypeOf(undefined, first)
  types.set(cid, type)
  return type
}

/**
 * The type of the file `cid` sniffed from `start` (its first bytes), read
 * apart from the body a request asks for. When they cannot be read (a block
 * before the range nobody has), the range is served all the same, as
 * `application/octet-stream`, and nothing is remembered; a request that was
 * aborted (the client left, the retrieval timeout) fails as it would have.
 */
async function sniffStart (ctx: GatewayContext, cid: CID, start: AsyncIterable<Uint8Array>): Promise<string> {
  const prefix: Uint8Array[] = []
  try {
    for await (const chunk of start) prefix.push(chunk)
  } catch (err) {
    if (ctx.signal.aborted) throw err
    return contentTypeOf(undefined, undefined)
  }
  return sniffedFrom(ctx.types, cid, Buffer.concat(prefix))
}

/** A directory: its index.html, or a listing; first a redirect to the URL with a trailing slash. */
async function serveDirectory (ctx: GatewayContext, resolved: ResolvedPath, entry: UnixFSEntry & { type: 'directory' }): Promise<void> {
  const { req, res, request, blocks, signal } = ctx
  const headers = contentHeaders(request.path, resolved)
  if (!request.path.trailingSlash) {
    const search = new URL(req.url ?? '/', 'http://gateway').search
    res.writeHead(301, { ...headers, location: `${request.path.text}/${search}` })
    res.end()
    return
  }
  const indexPath = { ...request.path, segments: [...request.path.segments, INDEX_HTML] }
  const index = await resolvePath(blocks, indexPath, signal).catch((err: any) => {
    if (err?.name === 'NotFoundError') return undefined
    throw err
  })
  if (index !== undefined) {
    const indexEntry = await resolveEntry(blocks, index.terminal, signal)
    if (indexEntry.type !== 'directory' && indexEntry.type !== 'object') {
      await serveFile(ctx, index, indexEntry, INDEX_HTML, headers)
      return
    }
  }
  const etag = `W/"DirIndex-${resolved.terminal.toString()}"`
  if (answeredNotModified(req, res, etag, headers)) return
  await sendBody(res, {
    status: 200,
    head: request.head,
    headers: () => ({ ...headers, etag, 'content-type': 'text/html; charset=utf-8' }),
    source: renderListing({ path: `${request.path.text}/`, cid: resolved.terminal, entries: entry.entries({ signal }) })
  })
}

