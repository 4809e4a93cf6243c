/**
 * What a response handler of the gateway works with.
 *
 * @module
 */
import type { BlockGetter } from '../reads/api.js'
import type { GatewayRequest } from './request.js'
import type { SniffedTypes } from './sniffed-types.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { CID } from 'multiformats/cid'

/** One request being answered. */
export interface GatewayContext {
  req: IncomingMessage
  res: ServerResponse
  request: GatewayRequest
  /** The node's block service for this request (local, peers, stripes, cold tier), under its retrieval timeout. */
  blocks: BlockGetter
  /** Aborted when the client goes away or the retrieval timeout fires. */
  signal: AbortSignal
  /** A session for the DAG of the content at `root` (a file the path ends at), turning to the file's pin when a block is wanting (node/reads/content-session.ts). */
  contentBlocks: (root: CID) => BlockGetter
  /** The types sniffed from files' first bytes, shared by the gateway's requests. */
  types: SniffedTypes
}
