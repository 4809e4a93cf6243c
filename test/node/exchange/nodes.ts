import { setTimeout as sleep } from 'node:timers/promises'
/**
 * Block exchange test nodes: a real libp2p host on 127.0.0.1, a real
 * LevelDB block store and an exchange, all torn down when the test ends.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { createHost, type ShoalLibp2p } from '../../../node/net/host.js'
import { createBlockExchange, type BlockExchange, type BlockExchangeInit, type PutPolicy } from '../../../node/exchange/index.js'
import { defer, openBlockStore, tempDir, type CleanupContext } from '../../helpers/temp.js'
import { lpStream } from '@libp2p/utils'
import { BLOCKS_PROTOCOL, MAX_MESSAGE_BYTES, decodeRequest, encodeResponse } from '../../../protocol/block-exchange.js'
import type { LevelBlockStore } from '../../../node/blocks/index.js'
import type { CID } from 'multiformats/cid'

const logger = pino({ level: 'silent' })

/** One node of a test. */
export interface TestNode {
  libp2p: ShoalLibp2p
  blockstore: LevelBlockStore
  exchange: BlockExchange
  /** The block store's LevelDB folder. */
  dir: string
}

/** Options of {@link startNode}. */
export interface TestNodeOptions {
  swarmKey?: Uint8Array
  init?: BlockExchangeInit
  /** Start the exchange (serve). @default true */
  exchange?: boolean
  putPolicy?: PutPolicy
}

/** A started host + store + exchange, all torn down when the test ends. */
export async function startNode (t: CleanupContext, options: TestNodeOptions = {}): Promise<TestNode> {
  const dir = await tempDir(t)
  const blockstore = await openBlockStore(t, dir)
  const libp2p = await createHost({ privateKey: await generateKeyPair('Ed25519'), swarmKey: options.swarmKey })
  defer(t, async () => { await libp2p.stop() })
  const exchange = createBlockExchange({ libp2p, blockstore, logger, putPolicy: options.putPolicy }, { requestTimeoutMs: 5_000, findProvidersTimeoutMs: 5_000, ...options.init })
  if (options.exchange !== false) {
    await exchange.start()
    defer(t, async () => { await exchange.stop() })
  }
  return { libp2p, blockstore, exchange, dir }
}

/** Dial `b` from `a`. */
export async function connect (a: TestNode, b: TestNode, ms = 5_000): Promise<void> {
  await a.libp2p.dial(b.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(ms) })
}

/**
 * A fault that cannot be made real: `node` (started with `exchange: false`)
 * speaks the block protocol, says it has every block asked about, and answers
 * each wanted block with the bytes `answer` gives — never, when it gives
 * undefined (a stalled peer); `delayMs` after the want (a slow peer);
 * `silentHaves`: never answers whether it has a block (a hung peer).
 */
export async function serveBlocksAs (node: TestNode, answer: (cid: CID) => Uint8Array | undefined, options: { delayMs?: number, silentHaves?: boolean } = {}): Promise<void> {
  await node.libp2p.handle(BLOCKS_PROTOCOL, async (stream) => {
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    try {
      while (true) {
        const request = decodeRequest((await lp.read()).subarray())
        if (request.type === 'have') {
          if (options.silentHaves !== true) await lp.write(encodeResponse({ v: 1, type: 'haves', id: request.id, haves: request.cids.map(() => true) }))
        } else if (request.type === 'want') {
          for (const cid of request.cids) {
            const data = answer(cid)
            if (data !== undefined && options.delayMs !== undefined) await sleep(options.delayMs)
            if (data !== undefined) await lp.write(encodeResponse({ v: 1, type: 'block', id: request.id, cid, data }))
          }
        }
      }
    } catch { stream.abort(new Error('done')) }
  })
}

/**
 * A fault that cannot be made real: a node that speaks the block protocol,
 * takes wants and never answers them (says it has every block, or with
 * `silentHaves` never answers that either: a hung peer).
 */
export async function startStalledPeer (t: CleanupContext, options: { silentHaves?: boolean } = {}): Promise<TestNode> {
  const node = await startNode(t, { exchange: false })
  await serveBlocksAs(node, () => undefined, options)
  return node
}
