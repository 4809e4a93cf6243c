/**
 * Coding a file while it is imported: the import hands each leaf to
 * {@link AddEncoder.onLeaf} as soon as it is hashed, and stripes are coded
 * from those leaves while they are in memory — no read-back from the store,
 * no second hash. {@link AddEncoder.finish} codes the last stripe, writes
 * the manifest and returns the pin for the file's namespace record.
 *
 * The policy may depend on the file's size (the configured default): until
 * it is known, leaves are held, at most `largeFrom` bytes of them (past that
 * size the policy is the large one).
 *
 * A node that cannot spread a stripe over enough live nodes for its parity
 * to survive a lost node ({@link minNodesOf}: 3 for `ec:4+2`) writes no
 * parity at all: the file is added under its policy, unencoded, and a
 * deferred record makes the repair pass code and place it once enough nodes
 * are live (see repairer.ts). Parity on too few disks costs space and
 * protects nothing a lost node would take.
 *
 * @module
 */
import { CustomProgressEvent } from 'progress-events'
import { codingOf, formatPolicy, minNodesOf, parsePolicy } from '../../protocol/durability.js'
import { StripeWriter } from './stripe-writer.js'
import { StreamPlacer } from './stream-placer.js'
import { InFlightMeter } from './in-flight.js'
import type { DurabilityParts } from './components.js'
import type { EncodeProgressEvents, Encoder } from './encoder.js'
import type { Placer, PlaceProgressEvents, PlaceResult } from './placer.js'
import type { DurabilitySettings } from './settings.js'
import type { Block } from './stripes.js'
import type { FilePin } from '../namespace/index.js'
import type { CID } from 'multiformats/cid'
import type { ProgressOptions } from 'progress-events'

/** Options of {@link AddEncoder}. */
export interface AddEncoderOptions extends ProgressOptions<EncodeProgressEvents> {
  /** The file's policy; default: the configured one for its size. */
  policy?: string
  signal?: AbortSignal
  /**
   * Place the shards on peers while the import goes on ({@link StreamPlacer});
   * the placement then ends with {@link AddEncoding.placement}. @default false
   */
  place?: boolean
  /** Progress of a streamed placement. */
  onPlaceProgress?: (event: PlaceProgressEvents) => void
  /**
   * Fsync in {@link AddEncoder.finish} every block written so far (the
   * import's included: an import that feeds an encoder leaves its fsync to
   * it) and the records. @default true (false: the caller's `sync()` of the service)
   */
  sync?: boolean
}

/** What an add's coding came to. */
export interface AddEncoding {
  /** The pin for the file's namespace record. */
  pin: FilePin
  /** Set when the coding waits for more live nodes: why, in one line. */
  waiting?: string
  /**
   * With `place`, when the file was coded: the end of the placement streamed
   * during the import (the holds that bind the pushed shards to the
   * manifest), running.
   */
  placement?: Promise<PlaceResult>
  /**
   * The most bytes of the file its coding and streamed placement held in
   * memory at once (leaves and parity being coded, shards queued for
   * peers); bounded by `MAX_ADD_BYTES` (in-flight.ts). 0 when nothing was coded.
   */
  peakBytes: number
}

/** What an {@link AddEncoder} is built from. */
export interface AddEncoderParts {
  components: DurabilityParts
  settings: Pick<DurabilitySettings, 'largeFrom' | 'largePolicy' | 'smallPolicy'>
  encoder: Pick<Encoder, 'getCoder' | 'stripeCoder'>
  placer: Pick<Placer, 'shortage' | 'livePeers' | 'sendHold' | 'noteRefusal' | 'conclude' | 'track'>
}

type State =
  | { kind: 'undecided' }
  | { kind: 'plain', policy: string }
  | { kind: 'coding', policy: string, k: number, m: number, writer: StripeWriter, placer?: StreamPlacer }
  | { kind: 'waiting', policy: string, why: string }

/** The coding of one add, fed leaf by leaf. */
export class AddEncoder {
  private state: State = { kind: 'undecided' }
  /** Leaves held while the policy is not known yet. */
  private held: Block[] = []
  private bytes = 0
  private readonly meter = new InFlightMeter()

  constructor (private readonly parts: AddEncoderParts, private readonly options: AddEncoderOptions = {}) {
    if (options.policy !== undefined) parsePolicy(options.policy)
  }

  /** Take the next leaf of the file, in file order (an import's `onLeaf`). */
  readonly onLeaf = async (leaf: Block): Promise<void> => {
    this.bytes += leaf.bytes.byteLength
    if (this.state.kind === 'coding') {
      await this.state.writer.add(leaf)
      return
    }
    if (this.state.kind !== 'undecided') return
    this.held.push(leaf)
    const { largeFrom, largePolicy } = this.parts.settings
    const policy = this.options.policy ?? (this.bytes >= largeFrom ? largePolicy : undefined)
    if (policy !== undefined) await this.decide(policy)
  }

  /**
   * Code the last stripe, write the manifest and record it (or the deferred
   * record), and return the pin of the file `root` of `size` bytes.
   */
  async finish (root: CID, size: number): Promise<AddEncoding> {
    const { blockstore, holdings, clock } = this.parts.components
    const sync = this.options.sync !== false
    if (this.state.kind === 'undecided') {
      const { largeFrom, largePolicy, smallPolicy } = this.parts.settings
      await this.decide(this.options.policy ?? (size >= largeFrom ? largePolicy : smallPolicy))
    }
    const state = this.state
    // the import left its fsync to this one: every block of the file (and its parity) is durable before the pin is returned
    const manifest = state.kind === 'coding' ? await state.writer.finish(root, size) : undefined
    if (sync) await blockstore.commit()
    if (state.kind === 'plain') return { pin: { policy: state.policy }, peakBytes: 0 }
    if (state.kind === 'waiting') {
      await holdings.noteDeferred(root, { policy: state.policy, size, since: clock.now() }, sync)
      return { pin: { policy: state.policy }, waiting: state.why, peakBytes: 0 }
    }
    if (state.kind !== 'coding' || manifest === undefined) throw new Error('unreachable: the policy is decided')
    await holdings.noteManifest(manifest, { root: root.toString(), k: state.k, m: state.m, role: 'origin', since: clock.now() }, sync)
    const coded: AddEncoding = { pin: { policy: state.policy, manifest: manifest.toString() }, peakBytes: this.meter.peak }
    if (state.placer !== undefined) {
      coded.placement = state.placer.finish(manifest, root, { sync })
      coded.placement.catch(() => {}) // its caller awaits it, or places again
    }
    return coded
  }

  /** Fix the policy, then feed the held leaves to the coder (if it codes). */
  private async decide (text: string): Promise<void> {
    const parsed = parsePolicy(text)
    const policy = formatPolicy(parsed)
    const coding = codingOf(parsed)
    if (coding === undefined) {
      this.state = { kind: 'plain', policy }
    } else {
      const short = await this.parts.placer.shortage(policy, coding, this.options.signal)
      if (short !== undefined) {
        this.state = { kind: 'waiting', policy, why: waitingWhy(short) }
      } else {
        const { onProgress, onPlaceProgress, signal } = this.options
        const placer = this.options.place === true
          ? new StreamPlacer(this.parts.components, this.parts.placer, { ...coding, peers: await this.parts.placer.livePeers(signal), signal, onProgress: onPlaceProgress, meter: this.meter })
          : undefined
        const writer = new StripeWriter({
          ...coding,
          code: this.parts.encoder.stripeCoder(await this.parts.encoder.getCoder()),
          blockstore: this.parts.components.blockstore,
          signal,
          onStripe: stripes => onProgress?.(new CustomProgressEvent('shoal:durability:encode', { stripes, total: 0 })),
          onStored: placer?.add,
          meter: this.meter
        })
        this.state = { kind: 'coding', policy, ...coding, writer, placer }
      }
    }
    const held = this.held
    this.held = []
    if (this.state.kind === 'coding') for (const leaf of held) await this.state.writer.add(leaf)
  }
}

/** One line: too few live nodes for `policy`'s parity to be of use. */
export function shortage (nodes: number, policy: string, needed: number): string {
  const kept = policy.startsWith('replicas:') ? 'its copies' : 'its parity'
  return `${nodes} live node${nodes === 1 ? '' : 's'}, ${policy} needs ${needed} for ${kept} to survive a lost node`
}

/**
 * One line: `nodes` live nodes are enough to code `policy` but fewer than the
 * `shards` of a stripe (k+m, or fewer for a file of fewer than k leaves), so
 * some node holds more than one of them and the stripe survives fewer lost
 * nodes than the policy says (its shards spread evenly, as placement
 * spreads them).
 */
export function thinSpread (nodes: number, policy: string, coding: { k: number, m: number }, shards = coding.k + coding.m): string {
  const survives = Math.floor(coding.m / Math.ceil(shards / nodes))
  const unit = policy.startsWith('replicas:') ? 'copies' : 'shards'
  const of = shards === coding.k + coding.m ? policy : `its ${policy} stripe`
  return `${nodes} live nodes, fewer than the ${shards} ${unit} of ${of}: placed over them, it survives the loss of ${survives} node${survives === 1 ? '' : 's'} (not ${coding.m}) until more are live, then it is placed again`
}

/** One line: why a file's coding waits, from its {@link shortage}. */
export function waitingWhy (short: string): string {
  return `${short}; it is coded and placed once they are live`
}
