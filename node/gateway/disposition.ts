/**
 * `Content-Disposition` of a file answered by the path gateway, from the
 * request's `?filename=` and `?download=true` (the path gateway spec): a
 * browser saves `/ipfs/{cid}?filename=report.pdf&download=true` as
 * `report.pdf` instead of a file named after the CID, and opens it in
 * place with `filename` alone (`inline`).
 *
 * The name is sent twice, as RFC 6266 advises: `filename="…"` in printable
 * ASCII (any other character, `"` and `\` replaced by `_`) for old clients,
 * and `filename*=UTF-8''…` percent-encoded (RFC 8187) for the others, so
 * no byte of a name can end the header or add another.
 *
 * @module
 */

/** Longest `filename` kept (characters); a longer one is cut. */
const MAX_FILENAME = 255

/** `Content-Disposition` for `query` (the request's), or undefined when it asks for none. */
export function contentDisposition (query: URLSearchParams, fallbackName?: string): string | undefined {
  const asked = query.get('filename')
  const download = query.get('download') === 'true'
  if (asked === null && !download) return undefined
  const kind = download ? 'attachment' : 'inline'
  const name = [...(asked ?? fallbackName ?? '')].slice(0, MAX_FILENAME).join('')
  if (name === '') return kind
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_')
  const encoded = encodeURIComponent(name).replace(/['()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`
}

/** The name `query`'s `filename` gives the file, if any (its type is then taken from it). */
export function askedFilename (query: URLSearchParams): string | undefined {
  const asked = query.get('filename')
  return asked === null || asked === '' ? undefined : asked
}
