/**
 * The namespace's real member table (node/namespace/members.ts, on a memory
 * KV) seen through the durability service's seam, `NamespaceClocks`, as the
 * replica gives it: for tests of when a removal is settled.
 */
import { MemoryKV } from '../../node/namespace/kv.js'
import { Members } from '../../node/namespace/members.js'
import type { VectorClock } from '../../node/namespace/clock.js'
import type { NamespaceClocks } from '../../node/durability/index.js'

/** A member table of replica `self` whose applied clock is `applied` (changed in place by the test), and its seam. */
export function namespaceClocksOf (now: { t: number }, applied: VectorClock, self = 'self'): { ns: NamespaceClocks, members: Members } {
  const members = new Members({
    kv: new MemoryKV(),
    id: self,
    trust: { trusts: () => true },
    clock: { now: () => now.t },
    applied: () => applied,
    heardSelf: () => {},
    memberTimeout: 3_600_000
  })
  const ns: NamespaceClocks = {
    clockNow: () => applied,
    stableClock: () => members.stableClock(),
    behindMembers: () => members.behindMembers(),
    membersNotSeen: clock => members.membersNotSeen(clock),
    memberTimeout: members.memberTimeout
  }
  return { ns, members }
}
