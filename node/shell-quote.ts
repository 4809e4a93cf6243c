/**
 * A word for a POSIX shell, for the commands Shoal prints for users to run
 * (`shoal add KEPT --to PATH` for a file kept after a failed commit, `shoal
 * pin add PATH --policy …`): a path with spaces or quotes pasted as printed
 * names the same path.
 *
 * @module
 */

/** `text` as one word for a POSIX shell (single quotes; a quote inside closes, escapes and reopens them). */
export function shellQuote (text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`
}
