/**
 * What one add holds of its file in memory while it codes and places: the
 * leaves handed to its {@link StripeWriter} and their parity until the
 * stripe is stored, then the shards its {@link StreamPlacer} queued for
 * peers until they are pushed. Both add and take away bytes here as they
 * take and let go of blocks; the peak is what the add reports (and what a
 * test holds it to). The import's own buffer (the bytes sent to the leaf
 * worker and not back yet, `IN_FLIGHT_BYTES` in content/leaf-chunker.ts)
 * comes on top and is bounded by itself.
 *
 * @module
 */

/** Bytes of file data that one add's coding and placement hold at once, at most: {@link CODING_WINDOW_BYTES} + {@link MAX_QUEUED_BYTES} + a stripe for each. */
export const MAX_ADD_BYTES = 48 * 1024 * 1024

/** Bytes of leaves and parity a {@link StripeWriter} keeps while stripes are coded (the stripe being filled and at least one being coded go past it). */
export const CODING_WINDOW_BYTES = 12 * 1024 * 1024

/** Most bytes of shards queued for peers and not pushed yet, over all peers, before the import waits (one stripe's shards go past it). */
export const MAX_QUEUED_BYTES = 24 * 1024 * 1024

/** A running count of one add's bytes in memory, and its peak. */
export class InFlightMeter {
  private bytes = 0
  private top = 0

  /** Bytes held now. */
  get now (): number { return this.bytes }

  /** The most bytes held at once so far. */
  get peak (): number { return this.top }

  /** `n` more bytes held. */
  add (n: number): void {
    this.bytes += n
    if (this.bytes > this.top) this.top = this.bytes
  }

  /** `n` bytes let go. */
  take (n: number): void {
    this.bytes -= n
  }
}
