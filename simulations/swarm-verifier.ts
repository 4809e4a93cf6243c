/**
 * One signature check per signed message for a whole simulated swarm.
 *
 * Every replica of a simulation runs in one process, and a write gossiped
 * to N nodes is verified N times with the same key, bytes and signature:
 * the same answer every time, since Ed25519 verification is a pure
 * function of the three. This verifier remembers each answer by (author,
 * signature) and gives it again only for the very same signed bytes (they
 * are compared on each hit); anything else is checked by the wrapped
 * verifier. So the replicas still reject what does not verify (a forged
 * or altered entry is new bytes, checked for real), and the simulator
 * spends its time once per write instead of once per delivery.
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import { peerIdVerifier, type Verifier } from '../node/namespace/identity.js'

/** Options of {@link swarmVerifier}. */
export interface SwarmVerifierOptions {
  /** What checks a signature not seen before. @default peerIdVerifier() */
  inner?: Verifier
  /** Most answers remembered; all are forgotten when it is reached. @default 1000000 */
  max?: number
}

/** Counters of a {@link swarmVerifier}. */
export interface SwarmVerifierStats {
  /** Answers given again without checking. */
  hits: number
  /** Signatures checked by the wrapped verifier. */
  checks: number
}

/** A {@link Verifier} shared by every replica of a simulated swarm, with its counters. */
export function swarmVerifier (options: SwarmVerifierOptions = {}): { verifier: Verifier, stats: SwarmVerifierStats } {
  const inner = options.inner ?? peerIdVerifier()
  const max = options.max ?? 1_000_000
  const answers = new Map<string, { data: Buffer, ok: boolean }>()
  const stats: SwarmVerifierStats = { hits: 0, checks: 0 }
  const verifier: Verifier = async (author, data, sig) => {
    const key = `${author}\n${Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).toString('latin1')}`
    const known = answers.get(key)
    if (known !== undefined && known.data.equals(data)) {
      stats.hits++
      return known.ok
    }
    stats.checks++
    const ok = await inner(author, data, sig)
    if (known === undefined) {
      if (answers.size >= max) answers.clear()
      answers.set(key, { data: Buffer.from(data), ok })
    }
    return ok
  }
  return { verifier, stats }
}
