/**
 * Conflict copies kept whole on several nodes until they are resolved.
 *
 * Why: the losing version of a concurrent write is a conflict copy, and a
 * copy is never coded nor placed while it is one (its coding's bind would
 * end the conflict: docs/decisions.md, "A conflict copy's pin, mode or time
 * is not changed in place"). Copies whose coding was still to come when the
 * conflict arose (a file written while its node was alone, a save through a
 * mount) lived on their writer only, whatever their pin: a lost disk there
 * lost that version, which the namespace promises to keep.
 *
 * Mechanism: each repair pass, every node looks at the visible conflict
 * copies whose pin asks for redundancy and that have no manifest nor cold
 * copy. A copy is to be held whole by as many nodes as its code survives
 * losses plus one (`replicas:N`: N; `ec:K+M`: M+1), the ones whose kad keys
 * are closest to the sha-256 of its root CID among this node and the peers
 * that take data now (connected, answering, not full: the peers placement
 * would pick from; the DHT's rule, so every node that sees the same peers
 * picks the same ones). A node so picked that lacks some of the copy's
 * blocks reads it through the block service, keeping what it reads. The
 * collection keeps every block of a visible file without a coded pin that
 * is held here (gc.ts), conflict copies included, so the copy then lives on
 * those nodes too, its writer's copy aside, until the conflict is resolved.
 * A fetch is stopped with the service (a large copy no longer holds a
 * node's shutdown). The copies are listed from the namespace's conflicts,
 * not a scan of every file.
 *
 * What it does not do: a node picked once and no longer picked (peers came
 * and went) keeps its copy; a copy moved to a path of its own is coded by
 * its writer, and with its writer gone stays whole where it is, uncoded,
 * and a keeper lost then is not replaced.
 *
 * When it applies: a node that sees few peers picks among them only; nodes
 * with different views of the swarm may each pick themselves, which costs
 * a copy too many, never one too few where they agree.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { codingOf, parsePolicy } from '../../protocol/durability.js'
import { localPresence, readContent } from '../content/index.js'
import { rankByDistance } from './placement.js'
import { AbortedError } from '../errors.js'
import type { BlockStore } from '../blocks/index.js'
import type { BlockReader } from '../reads/api.js'
import type { Entry, FilePin } from '../namespace/index.js'
import type { ShardsNetwork } from './network.js'
import type { Logger } from '../logger.js'

/** What a {@link CopyKeeper} is built from. */
export interface CopyKeeperComponents {
  /** The visible conflict copies of the namespace. */
  copies: () => AsyncIterable<Entry>
  /** The peers that take data now (connected, answering, not full): `Placer.livePeers`. */
  livePeers: (signal?: AbortSignal) => Promise<string[]>
  network: Pick<ShardsNetwork, 'self'>
  blockstore: Pick<BlockStore, 'has' | 'getBytes'>
  blocks: Pick<BlockReader, 'session'>
  logger: Logger
}

/** What one {@link CopyKeeper.keep} did. */
export interface CopiesKept {
  /** Conflict copies whose pin asks for more than one node, uncoded. */
  copies: number
  /** Of those, copies this node is to hold whole. */
  keptHere: number
  /** Of those, copies whose missing blocks it fetched in this pass. */
  fetched: number
  errors: string[]
}

/**
 * How many nodes hold a copy uncoded under `pin` whole: its code's losses
 * survived plus one (`replicas:N` → N, `ec:K+M` → M+1); 1 without a code.
 */
export function wholeCopiesOf (pin: FilePin | undefined): number {
  if (pin === undefined) return 1
  try {
    const coding = codingOf(parsePolicy(pin.policy))
    return coding === undefined ? 1 : coding.m + 1
  } catch {
    return 1
  }
}

/** The `count` nodes of `nodes` whose kad keys are closest to the sha-256 of `root`. */
export function keepersOf (root: CID, nodes: readonly string[], count: number): string[] {
  const key = createHash('sha256').update(root.bytes).digest()
  return rankByDistance(key, [...new Set(nodes)].map(id => ({ id }))).slice(0, count).map(p => p.id)
}

/** Keeps conflict copies whole on the nodes picked for them (see the module comment). */
export class CopyKeeper {
  private readonly log: Logger
  /** Ends the fetches under way when the service stops (a scheduled pass has no signal of its own). */
  private readonly stopping = new AbortController()

  constructor (private readonly components: CopyKeeperComponents) {
    this.log = components.logger.child({ component: 'durability' })
  }

  /** Stop: a fetch under way ends with `AbortedError`, and so does the pass it is in. */
  stop (): void { this.stopping.abort(new AbortedError('the durability service is stopping')) }

  /** One pass over the visible conflict copies: fetch those this node is to hold and lacks. */
  async keep (signal?: AbortSignal): Promise<CopiesKept> {
    const { network } = this.components
    const out: CopiesKept = { copies: 0, keptHere: 0, fetched: 0, errors: [] }
    const stopped = signal === undefined ? this.stopping.signal : AbortSignal.any([signal, this.stopping.signal])
    let nodes: string[] | undefined
    for await (const entry of this.components.copies()) {
      if (stopped.aborted) throw new AbortedError('keeping conflict copies aborted')
      if (entry.type !== 'file' || entry.conflictOf === undefined) continue
      if (entry.pin?.manifest !== undefined || entry.pin?.cold !== undefined) continue
      const count = wholeCopiesOf(entry.pin)
      if (count < 2) continue
      out.copies++
      try {
        nodes ??= [network.self, ...await this.components.livePeers(stopped)]
        const root = CID.parse(entry.cid)
        if (!keepersOf(root, nodes, count).includes(network.self)) continue
        out.keptHere++
        // every block looked up, however large the file: a copy cut short must not count as held
        const here = await localPresence(this.components.blockstore, root, { signal: stopped, maxBlocks: Number.MAX_SAFE_INTEGER, maxMissing: 1, keepMissing: 0 })
        if (here.missing === 0 && here.unknownSubtrees === 0) continue
        await this.fetch(root, stopped)
        out.fetched++
        this.log.info({ path: entry.path, root: entry.cid, of: entry.conflictOf }, 'conflict copy kept whole here until it is resolved')
      } catch (err: any) {
        if (stopped.aborted) throw new AbortedError('keeping conflict copies aborted')
        out.errors.push(`conflict copy ${entry.path}: ${String(err?.message ?? err)}`)
      }
    }
    return out
  }

  /** Read the whole file `root` through the block service, keeping every block it reads. */
  private async fetch (root: CID, signal: AbortSignal): Promise<void> {
    const session = this.components.blocks.session({ root }, { signal, keep: true })
    try {
      for await (const _ of readContent(session, root, { signal })) { /* the blocks are kept as they are read */ }
    } finally {
      session.close()
    }
  }
}
