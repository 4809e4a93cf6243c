/**
 * The content types the gateway sniffed from files' first bytes, by the
 * file's CID, the most recently used kept. A CID names its bytes for ever,
 * so an entry never goes stale: a ranged request that does not hold a
 * file's start takes the type from here rather than reading the start again
 * (for a striped or cold file, a fetch from a holder, a Reed-Solomon
 * rebuild or a cold-tier GET each time).
 *
 * @module
 */
import type { CID } from 'multiformats/cid'

/** Options of {@link SniffedTypes}. */
export interface SniffedTypesInit {
  /** Files remembered. @default 1024 */
  size?: number
}

/** Files' sniffed content types, bounded (least recently used forgotten first). */
export class SniffedTypes {
  private readonly types = new Map<string, string>()
  private readonly size: number

  constructor (init: SniffedTypesInit = {}) {
    this.size = init.size ?? 1024
  }

  /** The type sniffed from the file `cid` before; undefined when none was. */
  get (cid: CID): string | undefined {
    const key = keyOf(cid)
    const type = this.types.get(key)
    if (type !== undefined) this.remember(key, type)
    return type
  }

  /** Remember the type sniffed from the file `cid`. */
  set (cid: CID, type: string): void {
    this.remember(keyOf(cid), type)
  }

  private remember (key: string, type: string): void {
    this.types.delete(key)
    this.types.set(key, type)
    if (this.types.size > this.size) this.types.delete(this.types.keys().next().value as string)
  }
}

/** One key for a CIDv0 and the CIDv1 of the same dag-pb node; the codec is part of it (a raw block and a dag-pb node of the same bytes are other files). */
function keyOf (cid: CID): string {
  return cid.toV1().toString()
}
