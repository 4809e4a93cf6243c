/**
 * The HTML page of a directory without `index.html`: one row per entry
 * (name linking below the directory, size, CID linking to the entry on its
 * own), streamed as the directory's links are read, so a large directory is
 * never held in memory. Names are HTML-escaped and percent-encoded.
 *
 * @module
 */
import type { CID } from 'multiformats/cid'

/** One entry of a directory as the listing shows it. */
export interface ListingEntry { name: string, cid: CID, size: bigint }

/** Options of {@link renderListing}. */
export interface ListingInit {
  /** The directory's content path as requested (`/ipfs/{cid}/a/`), percent-encoded. */
  path: string
  /** The directory's CID. */
  cid: CID
  entries: AsyncIterable<ListingEntry>
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** `text` safe in HTML text and quoted attributes. */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, c => ESCAPES[c])
}

function formatSize (size: bigint): string {
  const n = Number(size)
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return `${value.toFixed(1)} ${units[unit]}`
}

/** The listing page, chunk by chunk. */
export async function * renderListing (init: ListingInit): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder()
  let decoded: string
  try { decoded = decodeURIComponent(init.path) } catch { decoded = init.path }
  const title = escapeHtml(decoded)
  yield encoder.encode(`<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}td{padding:.2em 1em .2em 0}td.size{text-align:right}.cid{font-family:monospace;font-size:.85em;color:#555}</style>
</head><body>
<h1>Index of ${title}</h1>
<p class="cid">${escapeHtml(init.cid.toString())}</p>
<table>
`)
  if (!/^\/ipfs\/[^/]+\/$/.test(init.path)) yield encoder.encode('<tr><td><a href="../">..</a></td><td></td><td></td></tr>\n')
  for await (const entry of init.entries) {
    const name = escapeHtml(entry.name)
    const href = escapeHtml(encodeURIComponent(entry.name))
    const cid = escapeHtml(entry.cid.toString())
    yield encoder.encode(`<tr><td><a href="${href}">${name}</a></td><td class="size">${formatSize(entry.size)}</td><td class="cid"><a href="/ipfs/${cid}">${cid}</a></td></tr>\n`)
  }
  yield encoder.encode('</table>\n</body></html>\n')
}
