/**
 * The line that tells a node its writes are refused by the members it is
 * connected to, on its own: the CLI prints it after every write command, so
 * it must not load what the trust admin needs (the config, peer ids and
 * their crypto) into `shoal cat` and the other commands.
 *
 * @module
 */
import type { WriteRefusalSummary } from '../namespace/write-refusals.js'

/**
 * The line that says this node's writes are refused, or undefined when no
 * connected member said so: what `shoal status`, `shoal trust ls` and the
 * write commands print.
 */
export function refusalLine (t: { self: string, ownWrites: WriteRefusalSummary }): string | undefined {
  const { refusedBy, members } = t.ownWrites
  if (refusedBy.length === 0) return undefined
  return `your writes are refused by ${refusedBy.length} of ${members} connected member${members === 1 ? '' : 's'} (they do not trust this node): ask a member to \`shoal trust add ${t.self}\``
}

