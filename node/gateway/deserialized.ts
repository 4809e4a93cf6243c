/**
 * The content itself, as a browser or `curl` wants it: a file's bytes
 * (ranged reads with `Range`: 206 and `Content-Range`, 416 past the end), a
 * directory's `index.html`, or else an HTML listing of the directory. These
 * responses are not verifiable by the client (the gateway is trusted to
 * decode the DAG); IPFS clients ask for raw blocks or CARs instead.
 *
 * A directory URL without a trailing slash is redirected (301) to one with
 * it, so relative links in its pages and listing resolve below it.
 *
 * @module
 */
import { readContent, resolveEntry, entrySize } from '../content/index.js'
import { NotAcceptableError } from './errors.js'
import { answeredNotModified, contentHeaders, sendBody } from './http.js'
import { renderListing } from './listing.js'
import { contentTypeOf } from './mime.js'
import { parseRangeHeader } from './range.js'
import { resolvePath, type ResolvedPath } from './resolve.js'
import type { GatewayContext } from './context.js'
import type { UnixFSEntry } from 'ipfs-unixfs-exporter'
import type { OutgoingHttpHeaders } from 'node:http'

/** The name a directory's page is served from. */
const INDEX_HTML = 'index.html'

/** Answer the content at the end of the path. */
export async function serveContent (ctx: GatewayContext): Promise<void> {
  const { request, blocks, signal } = ctx
  const resolved = await resolvePath(blocks, request.path, signal)
  const entry = await resolveEntry(blocks, resolved.terminal, signal)
  if (entry.type === 'directory') {
    await serveDirectory(ctx, resolved, entry)
    return
  }
  if (entry.type === 'object') {
    throw new NotAcceptableError(`${request.path.text} is ${entry.cid.code === 0x71 ? 'dag-cbor' : 'IPLD'} data, not a UnixFS file or directory: ask for it with ?format=raw or ?format=car`)
  }
  await serveFile(ctx, resolved, entry, request.path.segments[request.path.segments.length - 1])
}

/** A file's bytes, the whole or one range of them. */
async function serveFile (ctx: GatewayContext, resolved: ResolvedPath, entry: UnixFSEntry, name: string | undefined, headersOf = contentHeaders(ctx.request.path, resolved)): Promise<void> {
  const { req, res, request, signal } = ctx
  const size = entrySize(entry)
  const etag = `"${resolved.terminal.toString()}"`
  if (answeredNotModified(req, res, etag, headersOf)) return
  const range = parseRangeHeader(req.headers.range, size)
  const offset = range?.first ?? 0
  const length = range === undefined ? size : range.last - range.first + 1
  const headers = (first: Uint8Array | undefined): OutgoingHttpHeaders => ({
    ...headersOf,
    etag,
    'accept-ranges': 'bytes',
    'content-type': contentTypeOf(name, offset === 0 ? first : undefined),
    'content-length': length,
    ...(range === undefined ? {} : { 'content-range': `bytes ${range.first}-${range.last}/${size}` })
  })
  if (request.head && offset !== 0) {
    res.writeHead(206, headers(undefined))
    res.end()
    return
  }
  await sendBody(res, {
    status: range === undefined ? 200 : 206,
    head: request.head,
    headers,
    source: readContent(ctx.contentBlocks(resolved.terminal), resolved.terminal, { offset, length, signal })
  })
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

