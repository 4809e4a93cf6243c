/**
 * An HTTP/1.1 response decoder for the one response of a `Connection:
 * close` request: status line, headers, then a body framed by
 * `Transfer-Encoding: chunked`, by `Content-Length`, or by the end of the
 * connection. It is fed the bytes of the socket as they come (any split)
 * and hands the body on as views of what it was fed, never copied: the
 * CLI's `cat` reads the daemon's answer through it into large reused
 * buffers instead of Node's HTTP client (docs/benchmarks.md, "Transfer").
 *
 * @module
 */
import { ShoalError } from '../node/errors.js'

/** The daemon's answer is not HTTP/1.1 as this decoder reads it. */
export class InvalidResponseError extends ShoalError {
  override name = 'InvalidResponseError'
}

/** The connection ended before the whole body arrived (the daemon stopped, or failed mid-read). */
export class TruncatedResponseError extends ShoalError {
  override name = 'TruncatedResponseError'
}

/** Longest status line and headers taken. */
export const MAX_HEAD_BYTES = 64 * 1024
/** Longest chunk-size line (with extensions) or trailer line taken. */
const MAX_LINE_BYTES = 4096

/** What a decoder tells its owner. */
export interface ResponseHandlers {
  /** The status and the headers (names lower-cased), before any body byte. */
  onHead: (status: number, headers: Map<string, string>) => void
  /** A piece of the body: a view of the bytes fed, valid only during the call. */
  onBody: (bytes: Uint8Array) => void
}

type State = 'head' | 'size' | 'data' | 'data-end' | 'trailer' | 'length' | 'until-close' | 'done'

/** Decodes one response, fed with {@link ResponseDecoder.push} and closed with {@link ResponseDecoder.end}. */
export class ResponseDecoder {
  private state: State = 'head'
  /** Bytes of the head, or of a chunk-size or trailer line, gathered so far. */
  private line: Buffer[] = []
  private lineBytes = 0
  /** Body bytes left in the current chunk, or of the Content-Length body. */
  private left = 0

  constructor (private readonly handlers: ResponseHandlers) {}

  /** True once the whole body has arrived. */
  get done (): boolean { return this.state === 'done' }

  /**
   * Feed the next bytes of the connection.
   *
   * @throws {InvalidResponseError} for a malformed head or chunk framing, or bytes after the body
   */
  push (bytes: Uint8Array): void {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    let at = 0
    while (at < buf.byteLength) {
      switch (this.state) {
        case 'head': at = this.head(buf, at); break
        case 'size': at = this.gatherLine(buf, at, line => { this.size(line) }); break
        case 'data':
        case 'length': {
          const n = Math.min(this.left, buf.byteLength - at)
          this.handlers.onBody(buf.subarray(at, at + n))
          at += n
          this.left -= n
          if (this.left === 0) this.state = this.state === 'data' ? 'data-end' : 'done'
          break
        }
        case 'data-end': at = this.gatherLine(buf, at, line => {
          if (line.byteLength !== 0) throw new InvalidResponseError('a chunk is longer than its size')
          this.state = 'size'
        }); break
        case 'trailer': at = this.gatherLine(buf, at, line => { if (line.byteLength === 0) this.state = 'done' }); break
        case 'until-close': this.handlers.onBody(buf.subarray(at)); at = buf.byteLength; break
        case 'done': throw new InvalidResponseError('bytes after the end of the response')
      }
    }
  }

  /**
   * The connection ended.
   *
   * @throws {TruncatedResponseError} when the body (or the head) was not complete
   */
  end (): void {
    if (this.state === 'until-close') this.state = 'done'
    if (this.state !== 'done') throw new TruncatedResponseError(`the daemon's answer ended early (${this.state === 'head' ? 'before its headers' : 'in its body'})`)
  }

  /** Gather the head up to its blank line; then decide how the body is framed. */
  private head (buf: Buffer, at: number): number {
    const gathered = this.line.length === 0 ? buf.subarray(at) : Buffer.concat([...this.line, buf.subarray(at)])
    const before = this.lineBytes
    const end = gathered.indexOf('\r\n\r\n')
    if (end < 0) {
      if (gathered.byteLength > MAX_HEAD_BYTES) throw new InvalidResponseError(`response headers longer than ${MAX_HEAD_BYTES} bytes`)
      // a copy: the bytes fed may be a buffer the caller reuses
      this.line = [Buffer.from(gathered)]
      this.lineBytes = gathered.byteLength
      return buf.byteLength
    }
    if (end > MAX_HEAD_BYTES) throw new InvalidResponseError(`response headers longer than ${MAX_HEAD_BYTES} bytes`)
    this.line = []
    this.lineBytes = 0
    const [statusLine, ...fields] = gathered.toString('latin1', 0, end).split('\r\n')
    const status = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine)
    if (status === null) throw new InvalidResponseError(`not an HTTP/1.1 status line: ${JSON.stringify(statusLine.slice(0, 80))}`)
    const headers = new Map<string, string>()
    for (const field of fields) {
      const colon = field.indexOf(':')
      if (colon <= 0) throw new InvalidResponseError(`malformed header line: ${JSON.stringify(field.slice(0, 80))}`)
      const name = field.slice(0, colon).trim().toLowerCase()
      const value = field.slice(colon + 1).trim()
      headers.set(name, headers.has(name) ? `${headers.get(name) as string}, ${value}` : value)
    }
    const encoding = headers.get('transfer-encoding')
    const length = headers.get('content-length')
    if (encoding !== undefined) {
      if (encoding.toLowerCase() !== 'chunked') throw new InvalidResponseError(`transfer encoding ${JSON.stringify(encoding)} is not chunked`)
      this.state = 'size'
    } else if (length !== undefined) {
      if (!/^\d{1,15}$/.test(length)) throw new InvalidResponseError(`malformed content-length ${JSON.stringify(length)}`)
      this.left = Number(length)
      this.state = this.left === 0 ? 'done' : 'length'
    } else this.state = 'until-close'
    this.handlers.onHead(Number(status[1]), headers)
    // the bytes of this push past the head
    return at + (end + 4 - before)
  }

  /** Gather one CRLF-ended line (split across pushes), then hand it on without its CRLF. */
  private gatherLine (buf: Buffer, at: number, take: (line: Buffer) => void): number {
    const nl = buf.indexOf(10, at)
    const piece = buf.subarray(at, nl < 0 ? buf.byteLength : nl + 1)
    this.lineBytes += piece.byteLength
    if (this.lineBytes > MAX_LINE_BYTES) throw new InvalidResponseError(`a chunk-size or trailer line longer than ${MAX_LINE_BYTES} bytes`)
    if (nl < 0) {
      this.line.push(Buffer.from(piece))
      return buf.byteLength
    }
    const whole = this.line.length === 0 ? piece : Buffer.concat([...this.line, piece])
    this.line = []
    this.lineBytes = 0
    if (whole.byteLength < 2 || whole[whole.byteLength - 2] !== 13) throw new InvalidResponseError('a line not ended by CRLF')
    take(whole.subarray(0, whole.byteLength - 2))
    return nl + 1
  }

  /** A chunk-size line: hex size, optional `;extensions`. */
  private size (line: Buffer): void {
    const text = line.toString('latin1')
    const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(text)
    if (m === null) throw new InvalidResponseError(`malformed chunk size ${JSON.stringify(text.slice(0, 40))}`)
    this.left = parseInt(m[1], 16)
    this.state = this.left === 0 ? 'trailer' : 'data'
  }
}
