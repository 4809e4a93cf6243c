/**
 * The `Content-Type` of a deserialized file: from the extension of its name
 * when the path has one, else sniffed from its first bytes (a few binary
 * signatures, then UTF-8 text), else `application/octet-stream` — what a
 * browser needs to show a page, a picture or a video from the gateway. The
 * sniffed bytes are always the file's first {@link SNIFF_BYTES} (fewer for
 * a smaller file), whatever range a request asks for, so every response
 * about one file names the same type (but one for a range served while the
 * file's first bytes cannot be read: `application/octet-stream`, see
 * ./deserialized.ts).
 *
 * @module
 */

const BY_EXTENSION: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  htm: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  xml: 'application/xml',
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  ico: 'image/vnd.microsoft.icon',
  pdf: 'application/pdf',
  wasm: 'application/wasm',
  mp4: 'video/mp4',
  webm: 'video/webm',
  mp3: 'audio/mpeg',
  ogg: 'audio/ogg',
  wav: 'audio/wav',
  zip: 'application/zip',
  gz: 'application/gzip',
  tar: 'application/x-tar',
  car: 'application/vnd.ipld.car'
}

const SIGNATURES: Array<{ magic: number[], type: string }> = [
  { magic: [0x89, 0x50, 0x4e, 0x47], type: 'image/png' },
  { magic: [0xff, 0xd8, 0xff], type: 'image/jpeg' },
  { magic: [0x47, 0x49, 0x46, 0x38], type: 'image/gif' },
  { magic: [0x25, 0x50, 0x44, 0x46], type: 'application/pdf' },
  { magic: [0x50, 0x4b, 0x03, 0x04], type: 'application/zip' },
  { magic: [0x1f, 0x8b], type: 'application/gzip' }
]

const OCTET_STREAM = 'application/octet-stream'

/** Bytes of a file's beginning its type is sniffed from. */
export const SNIFF_BYTES = 512

/** True when `bytes` (a prefix of a file) read as UTF-8 text without control characters. */
function looksLikeText (bytes: Uint8Array): boolean {
  const sample = bytes.subarray(0, SNIFF_BYTES)
  // a multi-byte character cut at the end of the sample is not an error
  const text = new TextDecoder('utf-8', { fatal: false }).decode(sample)
  const bad = /[\x00-\x08\x0e-\x1f\x7f]/.test(text) || text.slice(0, -3).includes('\ufffd')
  return !bad
}

/** The content type the extension of `name` says; undefined when it says none (no name, no extension, an unknown one). */
export function typeByName (name: string | undefined): string | undefined {
  const dot = name?.lastIndexOf('.') ?? -1
  if (name === undefined || dot <= 0) return undefined
  return BY_EXTENSION[name.slice(dot + 1).toLowerCase()]
}

/**
 * The content type of a file named `name` (may be undefined: a bare CID)
 * whose first bytes are `first` (undefined: an empty file).
 */
export function contentTypeOf (name: string | undefined, first: Uint8Array | undefined): string {
  const known = typeByName(name)
  if (known !== undefined) return known
  if (first === undefined || first.byteLength === 0) return OCTET_STREAM
  for (const { magic, type } of SIGNATURES) {
    if (magic.every((b, i) => first[i] === b)) return type
  }
  return looksLikeText(first) ? 'text/plain; charset=utf-8' : OCTET_STREAM
}
