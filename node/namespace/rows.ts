/**
 * Keys of the replica's rows, in one place so that every module of the
 * replica names them alike (the prefixes are listed in docs/namespace.md,
 * "Storage"; the tree's own keys, `t!`, `v!` and `c!`, are tree.ts's).
 *
 * Per-author, per-member and per-head rows: the vector clock, the members'
 * clocks and the heads were once one record each (`m!clock`, `m!members`,
 * `m!heads`), rewritten whole by every commit: with many authors and
 * members that was megabytes per write, and with hundreds of authors
 * writing at once the heads alone were kilobytes (up to 4,096 heads of
 * ~80 bytes). One row per author (its counter), per member (what it has
 * seen, when it was last heard from) and per head (its dot) make a commit
 * write only what it changed.
 *
 * @module
 */
import type { Dot } from './clock.js'

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

/** `h!<cid>` → the head entry's dot `[author, seq]` (JSON): one row per head. */
export function headKey (cid: string): string { return 'h!' + cid }
/** Every head row. */
export const HEAD_RANGE = { gt: 'h!', lt: 'h"' } as const
/** The head (entry CID) a head row is about. */
export function cidOfHeadKey (key: string): string { return key.slice(2) }
/** The whole-heads record of stores written before the head rows (upgraded at open). */
export const LEGACY_HEADS_KEY = 'm!heads'

/** The whole-clock record of stores written before the rows (upgraded at open). */
export const LEGACY_CLOCK_KEY = 'm!clock'
/** The whole-members record of stores written before the rows (upgraded at open). */
export const LEGACY_MEMBERS_KEY = 'm!members'

/** Digits of a zero-padded seq in a key, so that keys sort by seq. */
const SEQ_WIDTH = 15

/** `s!<author>!<seq>` → `{ cid, w }`: the per-author index of applied entries (`w`: place in causal order). */
export function seqKey (author: string, seq: number): string { return `s!${author}!${String(seq).padStart(SEQ_WIDTH, '0')}` }
/** Every per-author index row. */
export const SEQ_RANGE = { gt: 's!', lt: 's"' } as const
/** The (author, seq) a per-author index row is about. */
export function dotOfSeqKey (key: string): Dot {
  const rest = key.slice(2)
  const i = rest.lastIndexOf('!')
  return [rest.slice(0, i), Number(rest.slice(i + 1))]
}

/** `r!<author>!<seq>` → the paths where the version of that dot was superseded before this replica applied it. */
export function supersededKey (dot: Dot): string { return `r!${dot[0]}!${String(dot[1]).padStart(SEQ_WIDTH, '0')}` }
/** Every superseded-dot row. */
export const SUPERSEDED_RANGE = { gt: 'r!', lt: 'r"' } as const
/** The dot a superseded-dot row is about. */
export function dotOfSupersededKey (key: string): Dot {
  const i = key.lastIndexOf('!')
  return [key.slice(2, i), Number(key.slice(i + 1))]
}

/**
 * `x!<load>!<path>` → a path's versions in a peer's snapshot being merged
 * (snapshot-load.ts): staged by load `<load>` while its tree is walked,
 * merged under the lock, deleted after.
 */
export function stagedKey (load: number, path: string): string { return `x!${load}!${path}` }
/** Key range of the rows staged by one load. */
export function stagedRange (load: number): { gt: string, lt: string } { return { gt: `x!${load}!`, lt: `x!${load}"` } }
/** Key range of every staged row. */
export const STAGED_RANGE = { gt: 'x!', lt: 'x"' } as const
/** Path of a staged row's key. */
export function pathOfStagedKey (key: string): string { return key.slice(key.indexOf('!', 2) + 1) }

/** `e!<cid>` → an applied entry's bytes. */
export function entryKey (cid: string): string { return 'e!' + cid }
/** `b!<cid>` → a snapshot block's bytes. */
export function blockKey (cid: string): string { return 'b!' + cid }
/**
 * `m!member-authors`: the authors the members' counters are numbered by, as
 * older builds stored them (members.ts; a JSON list of author ids, rewritten
 * whole whenever it grew). Still read at open; authors numbered past it are
 * {@link authorKey} rows.
 */
export const AUTHORS_KEY = 'm!member-authors'
/** `n!<number>` → the id of the author numbered `number` (members.ts; a JSON string; the number in 8 hex digits, so key order is number order). */
export function authorKey (n: number): string { return 'n!' + n.toString(16).padStart(8, '0') }
/** Every author row. */
export const AUTHOR_RANGE = { gt: 'n!', lt: 'n"' } as const
/** The number an author row is about (NaN when the key is not one). */
export function numberOfAuthorKey (key: string): number { return /^n![0-9a-f]{8}$/.test(key) ? parseInt(key.slice(2), 16) : NaN }

/** `m!<name>` → one of the replica's records (`heads`, `pruned`, `ahead`, `snapshot`, `recovering`…). */
export function metaKey (name: string): string { return 'm!' + name }

/** `q!<author>` → `{ seq, dots }`: the highest seq `author` was retired at, and the entries that retired it there (retire.ts). */
export function retiredKey (author: string): string { return 'q!' + author }
/** Every retirement row. */
export const RETIRED_RANGE = { gt: 'q!', lt: 'q"' } as const
/** The author a retirement row is about. */
export function authorOfRetiredKey (key: string): string { return key.slice(2) }
