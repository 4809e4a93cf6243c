/**
 * A GET whose body goes straight from the socket to a file descriptor:
 * `shoal cat` to stdout. Node's HTTP client reads 64 KiB at a time, parses
 * every piece in its HTTP parser and hands it through two streams; here the
 * socket reads into one reused 1 MiB buffer (`onread`) and each body piece
 * is written to the descriptor synchronously before the buffer is read
 * into again — a third of the CPU of the CLI process per byte
 * (docs/benchmarks.md, "Transfer").
 *
 * @module
 */
import { connect } from 'node:net'
import { writeSync } from 'node:fs'
import { ResponseDecoder } from './response-decoder.js'

/** Bytes read from the socket at once, at most. */
export const READ_BUFFER_BYTES = 1024 * 1024
/** Bytes of a non-2xx (or diverted) answer's body kept (an error document, a report). */
const MAX_ERROR_BODY = 1024 * 1024

/** Where a download's body goes. */
export interface FdTarget {
  /** The descriptor written with `writeSync`. */
  fd: number
  /**
   * A stream over the same descriptor, for when it is non-blocking and full
   * (`EAGAIN`): the rest is written through it, the socket paused until it
   * drains. Asked for only then (`process.stdout` is made on first use).
   */
  stream: () => NodeJS.WritableStream
}

/** What {@link downloadToFd} sends. */
export interface FdDownloadRequest {
  /** `http://host:port/path?query` of the daemon's API. */
  url: URL
  headers: Record<string, string>
  /** Told the answer's status and headers (names lower-cased) once they are in. */
  onHead?: (status: number, headers: Map<string, string>) => void
  /**
   * Asked of a 2xx answer's headers: true when its body is not the content
   * but a short report (the daemon wrote the content elsewhere): the body is
   * then kept and returned, not written to the target.
   */
  divert?: (headers: Map<string, string>) => boolean
}

/**
 * How a download ended: a 2xx whose body was written (or, when diverted,
 * kept in `report`), or another status with the body it carried.
 */
export type FdDownloadResult = { ok: true, report?: string } | { ok: false, status: number, body: string }

/**
 * GET `request.url` and write a 2xx answer's body to `target`.
 *
 * @throws {TruncatedResponseError} when the connection ends mid-body
 * @throws {InvalidResponseError} for an answer that is not HTTP/1.1
 * @throws the socket's error (e.g. `ECONNREFUSED`) or the write's (e.g. `EPIPE`)
 */
export async function downloadToFd (request: FdDownloadRequest, target: FdTarget): Promise<FdDownloadResult> {
  const { url } = request
  const head = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close']
  for (const [name, value] of Object.entries(request.headers)) head.push(`${name}: ${value}`)
  return await new Promise<FdDownloadResult>((resolve, reject) => {
    let status = 0
    let diverted = false
    const errorBody: Buffer[] = []
    let errorBytes = 0
    let failed = false
    const writer = new FdWriter(target)
    const decoder = new ResponseDecoder({
      onHead: (s, headers) => {
        status = s
        diverted = s >= 200 && s < 300 && request.divert?.(headers) === true
        request.onHead?.(s, headers)
      },
      onBody: bytes => {
        if (status >= 200 && status < 300 && !diverted) {
          if (!writer.write(bytes)) {
            socket.pause()
            writer.drained(() => {
              if (writer.error !== undefined) fail(writer.error)
              else socket.resume()
            })
          }
        } else if (errorBytes < MAX_ERROR_BODY) {
          errorBody.push(Buffer.from(bytes.subarray(0, MAX_ERROR_BODY - errorBytes)))
          errorBytes += bytes.byteLength
        }
      }
    })
    const fail = (err: unknown): void => {
      if (failed) return
      failed = true
      socket.destroy()
      reject(err)
    }
    const socket = connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port),
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (n, buf) => {
          if (failed) return false
          try {
            decoder.push(buf.subarray(0, n))
          } catch (err) {
            fail(err)
            return false
          }
          return true
        }
      }
    })
    socket.setNoDelay(true)
    socket.on('connect', () => { socket.write(head.join('\r\n') + '\r\n\r\n') })
    socket.on('error', fail)
    socket.on('close', () => {
      if (failed) return
      try {
        decoder.end()
      } catch (err) {
        fail(err)
        return
      }
      writer.drained(() => {
        if (writer.error !== undefined) { fail(writer.error); return }
        failed = true
        if (status >= 200 && status < 300) resolve(diverted ? { ok: true, report: Buffer.concat(errorBody).toString('utf8') } : { ok: true })
        else resolve({ ok: false, status, body: Buffer.concat(errorBody).toString('utf8') })
      })
    })
  })
}

/**
 * Writes to a descriptor synchronously (the bytes are views of a buffer
 * read into again next); on `EAGAIN` the rest is copied and written
 * through the target's stream, and every later write queues behind it.
 */
class FdWriter {
  /** The error of a queued write (e.g. `EPIPE`). */
  error: Error | undefined
  private behind = 0
  private waiters: Array<() => void> = []

  constructor (private readonly target: FdTarget) {}

  /** Write `bytes` (or queue a copy); false when the caller should wait for {@link drained}. */
  write (bytes: Uint8Array): boolean {
    let at = 0
    if (this.behind === 0) {
      try {
        while (at < bytes.byteLength) at += writeSync(this.target.fd, bytes, at, bytes.byteLength - at)
        return true
      } catch (err: any) {
        if (err?.code !== 'EAGAIN') throw err
      }
    }
    this.behind++
    this.target.stream().write(Buffer.from(bytes.subarray(at)), (err?: Error | null) => {
      if (err != null) this.error ??= err
      if (--this.behind > 0) return
      const waiters = this.waiters
      this.waiters = []
      for (const w of waiters) w()
    })
    return false
  }

  /** Call `then` once nothing is queued (at once when nothing is). */
  drained (then: () => void): void {
    if (this.behind === 0) then()
    else this.waiters.push(then)
  }
}
