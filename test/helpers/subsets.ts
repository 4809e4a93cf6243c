/** Every subset of the indexes 0..n-1 with at most `max` members, the empty one first: the losses a stripe of n shards may meet. */
export function indexSubsets (n: number, max: number): number[][] {
  const out: number[][] = []
  for (let mask = 0; mask < (1 << n); mask++) {
    const members = Array.from({ length: n }, (_, i) => i).filter(i => (mask & (1 << i)) !== 0)
    if (members.length <= max) out.push(members)
  }
  return out
}
