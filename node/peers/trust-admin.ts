/**
 * `shoal trust`: changes who may write the namespace while the node runs,
 * and keeps the change in the repo config (`namespace.writers`,
 * `namespace.trusted`) so it survives restarts.
 *
 * @module
 */
import { parsePeerId } from '../../protocol/peer-address.js'
import { InvalidArgumentError } from '../errors.js'
import { loadConfig, saveConfig } from '../repo/config.js'
import type { Logger } from '../logger.js'
import type { NamespaceSync } from '../namespace/sync.js'
import type { WriterTrust, WritersMode } from '../namespace/trust.js'
import type { WriteRefusalSummary } from '../namespace/write-refusals.js'

/** What {@link TrustAdmin} is built from. */
export interface TrustAdminComponents {
  trust: WriterTrust
  /** Pulls from a newly trusted peer at once; tells which members refuse this node's writes. */
  sync: Pick<NamespaceSync, 'pullFrom' | 'refusals'>
  logger: Logger
}

/** Settings of {@link TrustAdmin}. */
export interface TrustAdminInit {
  /** `<repo>/config.json`. */
  configFile: string
  /** This node's peer id. */
  self: string
  privateSwarm: boolean
}

/** What `shoal trust ls` shows. */
export interface TrustStatus {
  /** `swarm`: every member of a private swarm writes; `listed`: only this node and `trusted`. */
  writers: WritersMode
  swarm: 'private' | 'open'
  /** True when every author's entries are applied. */
  everyone: boolean
  self: string
  trusted: string[]
  /**
   * This node's own writes as the members connected now take them
   * (write-refusals.ts): how many members are connected, and which of them
   * said they do not apply this node's writes (they do not trust it).
   */
  ownWrites: WriteRefusalSummary
}

export { refusalLine } from './refusal-line.js'

/** A change of trust: what is saved, then `apply` to put it in force. */
interface PlannedChange {
  writers: WritersMode
  trusted: string[]
  apply: () => void
}

/** Changes and reports the node's writer trust; every change is saved to the config first. */
export class TrustAdmin {
  private queue: Promise<unknown> = Promise.resolve()

  constructor (private readonly components: TrustAdminComponents, private readonly init: TrustAdminInit) {}

  status (): TrustStatus {
    const { trust } = this.components
    return {
      writers: this.init.privateSwarm ? trust.mode : 'listed',
      swarm: this.init.privateSwarm ? 'private' : 'open',
      everyone: trust.everyone,
      self: this.init.self,
      trusted: trust.list(),
      ownWrites: this.components.sync.refusals.summary()
    }
  }

  /**
   * Trust `peer` from now on and pull its entries.
   *
   * @throws {InvalidArgumentError} for a malformed peer id or this node's own
   */
  async add (peer: string): Promise<TrustStatus> {
    const id = this.checkPeer(peer)
    const { trust, sync } = this.components
    return await this.change(() => trust.list().includes(id)
      ? undefined
      : { writers: trust.mode, trusted: [...trust.list(), id].sort(), apply: () => { trust.add(id); sync.pullFrom(id) } },
    { peer: id }, 'peer trusted')
  }

  /**
   * Stop applying `peer`'s entries (those applied so far stay).
   *
   * @throws {InvalidArgumentError} when the peer is not listed, or when every member writes anyway
   */
  async remove (peer: string): Promise<TrustStatus> {
    const id = this.checkPeer(peer)
    const { trust } = this.components
    if (trust.everyone) {
      throw new InvalidArgumentError('in this private swarm every member writes: run `shoal trust writers listed` first (after `shoal trust add` for each member that keeps writing), or move the trusted members to a new swarm key')
    }
    if (!trust.list().includes(id)) throw new InvalidArgumentError(`peer ${id} is not trusted here`)
    return await this.change(() => trust.list().includes(id)
      ? { writers: trust.mode, trusted: trust.list().filter(p => p !== id), apply: () => { trust.remove(id) } }
      : undefined,
    { peer: id }, 'peer no longer trusted')
  }

  /**
   * Where writers come from in a private swarm.
   *
   * @throws {InvalidArgumentError} in an open swarm, where only listed peers ever write
   */
  async setWriters (mode: WritersMode): Promise<TrustStatus> {
    if (!this.init.privateSwarm && mode === 'swarm') throw new InvalidArgumentError('an open swarm has no members to trust as a whole: only this node and `shoal trust add` peers write')
    const { trust } = this.components
    return await this.change(() => trust.mode === mode
      ? undefined
      : { writers: mode, trusted: trust.list(), apply: () => { trust.setMode(mode) } },
    { writers: mode }, 'namespace writers changed')
  }

  private checkPeer (peer: string): string {
    const id = parsePeerId(peer).toString()
    if (id === this.init.self) throw new InvalidArgumentError('this node always trusts itself')
    return id
  }

  /**
   * Save the trust `plan` makes from the live one (undefined: no change),
   * then apply it to the live trust; one change at a time. When the config
   * cannot be read or written, the live trust is left as it was: a change
   * the user was told failed is not in force either (before, it was, until
   * the next restart dropped it).
   */
  private async change (plan: () => PlannedChange | undefined, what: Record<string, string>, message: string): Promise<TrustStatus> {
    const run = this.queue.then(async () => {
      const next = plan()
      if (next === undefined) return this.status()
      const config = await loadConfig(this.init.configFile)
      config.namespace = { ...config.namespace, writers: next.writers, trusted: next.trusted }
      await saveConfig(this.init.configFile, config)
      next.apply()
      this.components.logger.info(what, message)
      return this.status()
    })
    this.queue = run.catch(() => {})
    return await run
  }
}
