/**
 * Which pin serves a content root: an in-memory index of the namespace's
 * pinned files (a stripe manifest or a cold copy), keyed by the root's
 * multihash, so a request for a CIDv0 finds the pin of the same content
 * stored under its CIDv1 (and any codec of the same bytes' hash).
 *
 * The index is built by one scan of the namespace's files, lazily: at the
 * first lookup, and at the first lookup after the namespace changed (a
 * local write or entries from peers, as the namespace reports them). A
 * lookup never scans on its own: however many requests ask, and whatever
 * they ask for, the namespace is scanned at most once per change, and
 * lookups made while a build runs share it. Only files with a manifest or a
 * cold copy are kept (a plain file's blocks are found by a plain read).
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import type { Entry } from '../namespace/index.js'
import type { ReadTarget } from './api.js'

/** Where the pins of files are found. */
export interface PinSource {
  /** Every visible file of the namespace. */
  files: () => AsyncIterable<Entry>
  /** Called after each local write; returns an unsubscribe function. Absent: the files never change. */
  onLocalEntries?: (listener: (entries: Uint8Array[]) => void) => () => void
  /** Called after entries from peers changed the namespace; returns an unsubscribe function. */
  onRemoteChange?: (listener: () => void) => () => void
}

/** What is kept of one pinned file. */
type PinnedTarget = Omit<ReadTarget, 'root'>

/** The key of a CID in the index: its multihash, in hex. */
function keyOf (cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('hex')
}

/** The pinned files of a namespace by content multihash (see the module comment). */
export class PinIndex {
  private readonly source: PinSource
  private readonly unsubscribe: Array<() => void> = []
  /** Bumped by every namespace change. */
  private version = 0
  private built: { version: number, index: Map<string, PinnedTarget> } | undefined
  private building: Promise<Map<string, PinnedTarget>> | undefined
  /** Scans of the namespace made so far (a test seam and a figure for logs). */
  builds = 0

  constructor (source: PinSource) {
    this.source = source
    const changed = (): void => { this.version++ }
    if (source.onLocalEntries !== undefined) this.unsubscribe.push(source.onLocalEntries(changed))
    if (source.onRemoteChange !== undefined) this.unsubscribe.push(source.onRemoteChange(changed))
  }

  /**
   * The read target of the pinned file whose content root has `root`'s
   * multihash; undefined when no visible file with a manifest or a cold copy
   * has it.
   */
  async lookup (root: CID): Promise<ReadTarget | undefined> {
    const index = await this.current()
    const found = index.get(keyOf(root))
    return found === undefined ? undefined : { root, ...found }
  }

  /** Stop following the namespace's changes. */
  close (): void {
    for (const u of this.unsubscribe.splice(0)) u()
  }

  private async current (): Promise<Map<string, PinnedTarget>> {
    if (this.built !== undefined && this.built.version === this.version) return this.built.index
    if (this.building === undefined) {
      const version = this.version
      this.building = this.scan().then(index => {
        // a change during the scan leaves the index stale: the next lookup builds again
        this.built = { version, index }
        return index
      }).finally(() => { this.building = undefined })
    }
    return await this.building
  }

  private async scan (): Promise<Map<string, PinnedTarget>> {
    this.builds++
    const index = new Map<string, PinnedTarget>()
    for await (const entry of this.source.files()) {
      if (entry.type !== 'file') continue
      const pin = entry.pin
      if (pin?.manifest === undefined && pin?.cold === undefined) continue
      try {
        index.set(keyOf(CID.parse(entry.cid)), { manifest: pin.manifest === undefined ? undefined : CID.parse(pin.manifest), cold: pin.cold })
      } catch {
        // a record whose CID does not parse names no content a read could ask for
      }
    }
    return index
  }
}
