/**
 * Keys of the replica's per-author and per-member rows. The vector clock and
 * the members' clocks were once one record each (`m!clock`, `m!members`),
 * rewritten whole by every commit: with many authors and members that was
 * megabytes per write. One row per author (its counter) and one per member
 * (what it has seen, when it was last heard from) make a commit write only
 * what it changed.
 *
 * @module
 */

/** `k!<author>` → the highest seq of `author` applied (JSON number). */
export function clockKey (author: string): string { return 'k!' + author }
/** Every clock row. */
export const CLOCK_RANGE = { gt: 'k!', lt: 'k"' } as const
/** The author a clock row is about. */
export function authorOfClockKey (key: string): string { return key.slice(2) }

/** `p!<peer>` → `{ clock, seen }`: what a member has seen, and when it was last heard from. */
export function memberKey (peer: string): string { return 'p!' + peer }
/** Every member row. */
export const MEMBER_RANGE = { gt: 'p!', lt: 'p"' } as const
/** The member a member row is about. */
export function peerOfMemberKey (key: string): string { return key.slice(2) }

/** The whole-clock record of stores written before the rows (upgraded at open). */
export const LEGACY_CLOCK_KEY = 'm!clock'
/** The whole-members record of stores written before the rows (upgraded at open). */
export const LEGACY_MEMBERS_KEY = 'm!members'
