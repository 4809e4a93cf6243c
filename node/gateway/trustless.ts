/**
 * The verifiable responses of the trustless-gateway spec: one raw block
 * (`application/vnd.ipld.raw`) and a CARv1 of the DAG at the end of a path
 * (`application/vnd.ipld.car`), written by the node's CAR export with the
 * blocks {@link scopedWalk} selects.
 *
 * A raw block is read through the content session of its own CID, so the
 * root of a pinned file (a cold-only or degraded striped one) is found
 * through its pin; a block below a file's root is not (no index maps it to
 * its file: docs/gateway.md, "Limits").
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { exportCar } from '../car/index.js'
import { RAW } from '../car/links.js'
import { scopedWalk, type CarSelection } from './car-scope.js'
import { answeredNotModified, contentHeaders, resumed, sendBody } from './http.js'
import { CAR_CONTENT_TYPE, RAW_TYPE, type DagScope, type EntityBytes } from './negotiate.js'
import { resolveEntityBytes } from './range.js'
import { resolvePath } from './resolve.js'
import { unixfsFileSize } from './unixfs.js'
import type { GatewayContext } from './context.js'
import type { CID } from 'multiformats/cid'

/** Answer one raw block: the block at the end of the path. */
export async function serveRaw (ctx: GatewayContext): Promise<void> {
  const { req, res, request, blocks, signal } = ctx
  const resolved = await resolvePath(blocks, request.path, signal)
  const bytes = await ctx.contentBlocks(resolved.terminal).getBytes(resolved.terminal, { signal })
  const etag = `"${resolved.terminal.toString()}.raw"`
  const headers = contentHeaders(request.path, resolved)
  if (answeredNotModified(req, res, etag, headers)) return
  res.writeHead(200, {
    ...headers,
    etag,
    'content-type': RAW_TYPE,
    'content-length': bytes.byteLength,
    'content-disposition': `attachment; filename="${resolved.terminal.toString()}.bin"`
  })
  res.end(request.head ? undefined : bytes)
}

/** The bytes of the terminal that `entity-bytes` selects, as a {@link CarSelection}. */
function selectionOf (terminal: CID, bytes: Uint8Array, scope: DagScope, entityBytes: EntityBytes | undefined): CarSelection {
  if (entityBytes === undefined) return { scope }
  // an identity multihash says nothing of the codec: identity dag-pb is a UnixFS node like any other
  const size = terminal.code === RAW ? bytes.byteLength : unixfsFileSize(terminal, bytes)
  // not a byte array (a directory, dag-cbor): entity-bytes is ignored, as the spec says
  if (size === undefined) return { scope: 'entity' }
  const range = resolveEntityBytes(entityBytes, size)
  return range === undefined ? { scope: 'block' } : { scope: 'entity', range }
}

/** A strong Etag for one CAR variant: the terminal and the selection (CIDs never change, so neither does the CAR). */
function carEtag (terminal: CID, format: { scope: DagScope, entityBytes?: EntityBytes }): string {
  const variant = `${format.scope}|${format.entityBytes === undefined ? '' : `${format.entityBytes.from}:${format.entityBytes.to ?? '*'}`}|v1|dfs|n`
  return `"${terminal.toString()}.car.${createHash('sha256').update(variant).digest('hex').slice(0, 16)}"`
}

/**
 * Answer a CARv1 (`order=dfs; dups=n`) whose root is the path's root: the
 * blocks that resolve the path, then the terminal's DAG as `dag-scope` and
 * `entity-bytes` select it. The terminal block is read before the status
 * line, so a missing root is a 404, a range wholly outside the file a 400.
 */
export async function serveCar (ctx: GatewayContext, format: { scope: DagScope, entityBytes?: EntityBytes }): Promise<void> {
  const { req, res, request, blocks, signal } = ctx
  const resolved = await resolvePath(blocks, request.path, signal)
  const content = ctx.contentBlocks(resolved.terminal)
  const terminalBytes = await content.getBytes(resolved.terminal, { signal })
  const selection = selectionOf(resolved.terminal, terminalBytes, format.scope, format.entityBytes)
  const etag = carEtag(resolved.terminal, format)
  const headers = contentHeaders(request.path, resolved)
  if (answeredNotModified(req, res, etag, headers)) return
  // the terminal was just read: the export gets it again without a second fetch
  const terminalKey = resolved.terminal.toString()
  const getter = {
    getBytes: async (cid: CID, options?: { signal?: AbortSignal }) => cid.toString() === terminalKey ? terminalBytes : await content.getBytes(cid, options)
  }
  await sendBody(res, {
    status: 200,
    head: request.head,
    headers: () => ({
      ...headers,
      etag,
      'content-type': CAR_CONTENT_TYPE,
      'content-disposition': `attachment; filename="${request.path.root.toString()}.car"`,
      'x-content-type-options': 'nosniff'
    }),
    // each entry of a directory through a session of its own, as a read of that entry alone (its pin: stripes, cold copy)
    source: heldHeader(exportCar(getter, request.path.root, { signal, ...scopedWalk(resolved, selection), entryReader: entry => ctx.contentBlocks(entry) }))
  })
}

/**
 * A CAR stream whose header is held back until a block follows it (or the
 * CAR ends): a walk that fails before its first block (an identity root
 * whose first child nobody has) is still answered with an HTTP error, not a
 * 200 cut after the header.
 */
async function * heldHeader (source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]()
  let first: Uint8Array
  try {
    const header = await it.next()
    if (header.done === true) return
    const next = await it.next()
    first = next.done === true ? header.value : Buffer.concat([header.value, next.value])
  } catch (err) {
    await it.return?.()
    throw err
  }
  yield * resumed(first, it)
}
