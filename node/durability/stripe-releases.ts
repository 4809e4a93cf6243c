/**
 * Releases of extra copies, one node at a time per stripe.
 *
 * Why: a node releases an extra copy of a shard (node/durability/surplus.ts)
 * only after asking the stripe's live holders what they hold, right then,
 * and only when the release leaves the stripe no worse against one lost
 * node. That check is sound for releases made one after another. Two
 * holders of a stripe releasing at the same moment, each asking before the
 * other's release lands, each count the copies the others are giving up:
 * with every holder deciding on the same answers by surplus.ts's rule (a
 * script, not kept), 95 of 3,000 random states of small stripes (2–4
 * holders, k+m of 2–5) were left worse against one lost node than before,
 * each release alone being fine; the repair pass then had to rebuild what
 * had just been released.
 *
 * How: the check's `holdings` request (of one stripe) says it comes before
 * a release (`release: true`). A holder that answers it with copies of the
 * stripe **holds** them for {@link RELEASE_HOLD_MS}: it starts no release
 * there meanwhile (a releaser whose view of the stripe lacks the asker
 * would not ask it, so refusing below would not stop it). A holder that is
 * itself releasing there answers an error
 * starting with {@link RELEASING} instead, and so does one holding
 * {@link MAX_RELEASE_HOLDS} stripes already. The asker then leaves the
 * stripe for its next pass (the passes' phases are drawn at random, so two
 * nodes rarely meet again); it does so too when any holder asked does not
 * answer, as a holder's copies left out of the count may be what keeps the
 * stripe able to lose a node. The asker makes its releases within half the
 * hold of beginning them (just before its requests go out), or leaves the
 * rest for its next pass. So every copy an asker counts stays where it was
 * counted until the asker is done, whatever the peers' clocks (only
 * durations are compared, each on its own node's clock): of two nodes
 * checking one stripe at the same moment, either one's request reaches the
 * other first (that one holds, the other releases) or each finds the other
 * releasing (both wait).
 *
 * When it applies: every release of an extra copy by the repair pass. A
 * placement's hand-over (the writer gives up a shard once its new holder
 * acknowledged it) does not pass here: the copy it gives up sits on the new
 * holder. A peer of an earlier version refuses the flagged request as
 * malformed: no node releases in a stripe such a peer holds until it is
 * upgraded. Not bounded per peer: a member sending checks of many stripes
 * this node holds can keep its releases waiting (not its data), as long as
 * it keeps sending them.
 *
 * @module
 */
import { RELEASING } from '../../protocol/shards.js'
import { ShoalError } from '../errors.js'
import type { CID } from 'multiformats/cid'

/** How long a holder keeps its copies of a stripe after answering a release check (ms). */
export const RELEASE_HOLD_MS = 30_000

/** Most stripes held for peers' releases at once; past it, checks are refused (the asker leaves the stripe for its next pass). */
export const MAX_RELEASE_HOLDS = 4096

/**
 * A release check refused: the holder is releasing copies of the stripe
 * itself, or holds too many stripes for peers already. Sent as an `error`
 * whose message starts with {@link RELEASING}; the asker leaves the stripe
 * for its next pass.
 */
export class StripeReleasingError extends ShoalError {
  override name = 'StripeReleasingError'
  override readonly status = 409
}

/** The name of stripe `index` of `manifest` in {@link StripeReleases}. */
export function stripeName (manifest: CID, index: number): string {
  return `${manifest.toString()}/${index}`
}

/** What {@link StripeReleases} reads. */
export interface StripeReleasesComponents {
  /** A monotonic clock (ms). */
  now: () => number
}

/** Settings of {@link StripeReleases}. */
export interface StripeReleasesInit {
  /** @default {@link RELEASE_HOLD_MS} */
  holdMs?: number
  /** @default {@link MAX_RELEASE_HOLDS} */
  maxHolds?: number
}

/** This node's releases in one stripe, from {@link StripeReleases.begin}. */
export interface StripeRelease {
  /** Whether a release may still be made: within half the hold of {@link StripeReleases.begin}. */
  inTime: () => boolean
  /** Done: peers' checks of the stripe are answered again. */
  end: () => void
}

/**
 * The stripes this node holds its copies of for peers' releases, and those
 * it is releasing in. Stripes are named by their caller (a manifest and a
 * stripe index).
 */
export class StripeReleases {
  /** Stripe → when its hold ends; in the order the holds were (re)granted, so the oldest end first. */
  private readonly holds = new Map<string, number>()
  /** Stripes this node is releasing copies in. */
  private readonly releasing = new Set<string>()
  private readonly holdMs: number
  private readonly maxHolds: number

  constructor (private readonly components: StripeReleasesComponents, init: StripeReleasesInit = {}) {
    this.holdMs = init.holdMs ?? RELEASE_HOLD_MS
    this.maxHolds = init.maxHolds ?? MAX_RELEASE_HOLDS
  }

  /**
   * A peer checks `stripes` before releasing copies there: hold this node's
   * copies of them for the hold period.
   *
   * @throws {StripeReleasingError} when this node is releasing in one of them, or would hold more than its maximum (nothing is held)
   */
  hold (stripes: readonly string[]): void {
    const now = this.components.now()
    this.expire(now)
    const busy = stripes.find(s => this.releasing.has(s))
    if (busy !== undefined) throw new StripeReleasingError(`this node is releasing copies of stripe ${busy}`)
    const fresh = stripes.filter(s => !this.holds.has(s)).length
    if (this.holds.size + fresh > this.maxHolds) throw new StripeReleasingError(`${this.holds.size} stripes held for peers' releases already`)
    for (const s of stripes) {
      // moved to the end: the map stays in the order the holds end
      this.holds.delete(s)
      this.holds.set(s, now + this.holdMs)
    }
  }

  /**
   * Hold none of `stripes` any more (a check answered with no copy of
   * them here: there is nothing to keep, and the room goes back).
   */
  drop (stripes: readonly string[]): void {
    for (const s of stripes) this.holds.delete(s)
  }

  /** Begin this node's releases in `stripe`; undefined while a peer's check holds it or this node releases there already. */
  begin (stripe: string): StripeRelease | undefined {
    const now = this.components.now()
    this.expire(now)
    if (this.holds.has(stripe) || this.releasing.has(stripe)) return undefined
    this.releasing.add(stripe)
    const until = now + this.holdMs / 2
    let ended = false
    return {
      inTime: () => !ended && this.components.now() < until,
      end: () => {
        if (ended) return
        ended = true
        this.releasing.delete(stripe)
      }
    }
  }

  /** Stripes held for peers now. */
  get held (): number {
    this.expire(this.components.now())
    return this.holds.size
  }

  private expire (now: number): void {
    for (const [stripe, until] of this.holds) {
      if (until > now) break
      this.holds.delete(stripe)
    }
  }
}
