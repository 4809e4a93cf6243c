import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import { readFile } from 'node:fs/promises'
import { apiUrlFromMultiaddr } from '../protocol/api-address.js'
import { DaemonNotRunningError, RepoNotFoundError, ShoalError, TooLargeError } from '../node/errors.js'
import { repoLayout } from '../node/repo/layout.js'
import { downloadToFd, type FdTarget } from './fd-download.js'
import { TruncatedResponseError } from './response-decoder.js'
import { STREAM_ID_HEADER } from '../node/api/stream-errors.js'
import { pipeline } from 'node:stream/promises'
import type { Readable } from 'node:stream'

/** An error the daemon answered with, carrying its `name`. */
export class ApiError extends ShoalError {
  override name: string
  override readonly status: number

  constructor (status: number, name: string, message: string) {
    super(message)
    this.name = name
    this.status = status
  }
}

/**
 * A progress stream (`?progress=true`, node/api/progress.ts) that ended
 * before its last line (the daemon stopped, the connection was cut) or
 * carried a line that is not one of its lines: the operation's outcome is
 * unknown.
 */
export class BrokenStreamError extends ShoalError {
  override name = 'BrokenStreamError'
}

/** Longest line of a progress stream taken (a result listing many lost blocks is long; anything longer is not the daemon's). */
export const MAX_PROGRESS_LINE_BYTES = 64 * 1024 * 1024

/** A request body whose length is known: sent with a Content-Length (the daemon checks room for it first). */
/** A body of known length; `type`, its Content-Type (default: raw bytes). */
export interface SizedBody { stream: Readable, length: number, type?: string }

/** Query parameters; undefined values are left out. */
export type Query = Record<string, string | number | boolean | undefined>

function hint (repo: string): string {
  return `start one with \`shoal daemon --repo ${repo}\``
}

/** The error a non-2xx answer's body names (`{"error":{"name","message"}}`), else a plain `ApiError`. */
function apiError (status: number, text: string): ApiError {
  let name = 'ApiError'
  let message = `HTTP ${String(status)}`
  try {
    const parsed = JSON.parse(text)
    name = parsed.error.name
    message = parsed.error.message
  } catch {
    // refused by Node's HTTP parser before any route saw it
    if (status === 431) { name = 'TooLargeError'; message = 'the request is too large: a path or argument is too long' }
  }
  return new ApiError(status, name, message)
}

/** Longest request URL sent: under Node's 16 KiB limit on a request's headers, with room for the others. */
const MAX_URL_CHARS = 12 * 1024

/** Talks to the daemon of one repo over its HTTP API. */
export class ApiClient {
  readonly repo: string
  private readonly base: string
  private readonly token: string

  private constructor (repo: string, base: string, token: string) {
    this.repo = repo
    this.base = base
    this.token = token
  }

  /**
   * Find the daemon of `repo` from `<repo>/api` and `<repo>/api.token`.
   *
   * @throws {RepoNotFoundError} {DaemonNotRunningError}
   */
  static async connect (repo: string): Promise<ApiClient> {
    const layout = repoLayout(repo)
    const token = await readFile(layout.apiToken, 'utf8').catch(() => undefined)
    if (token === undefined) throw new RepoNotFoundError(`no Shoal repo at ${repo}: create one with \`shoal init --repo ${repo}\``)
    const addr = await readFile(layout.api, 'utf8').catch(() => undefined)
    if (addr === undefined) throw new DaemonNotRunningError(`no daemon is running for repo ${repo}: ${hint(repo)}`)
    return new ApiClient(repo, apiUrlFromMultiaddr(addr), token.trim())
  }

  /** The API URL of `path` with `query` (undefined values left out). */
  private url (path: string, query: Query): URL {
    const url = new URL(path, this.base)
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v))
    // the daemon's HTTP parser refuses longer request lines (431, or a reset connection)
    if (url.href.length > MAX_URL_CHARS) throw new TooLargeError(`a path or argument is too long: the request would be ${url.href.length} characters, at most ${MAX_URL_CHARS}`)
    return url
  }

  /** The error for a daemon that does not answer at this repo's address. */
  private notAnswering (): DaemonNotRunningError {
    return new DaemonNotRunningError(`no daemon answers at ${this.base} for repo ${this.repo}: ${hint(this.repo)}`)
  }

  /** Send a request; resolves with the response once its headers arrive (non-2xx → ApiError). */
  async send (method: 'GET' | 'POST', path: string, query: Query = {}, sent?: Readable | SizedBody): Promise<IncomingMessage> {
    const body = sent === undefined || 'pipe' in sent ? sent : sent.stream
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` }
    if (sent !== undefined && !('pipe' in sent)) headers['content-length'] = String(sent.length)
    // a POST without a body says so: never chunked (the daemon refuses a
    // body, even an empty chunked one, on an endpoint that takes none)
    if (sent === undefined && method === 'POST') headers['content-length'] = '0'
    // raw bytes, labelled as such (the API refuses bodies of other types)
    if (sent !== undefined) headers['content-type'] = ('pipe' in sent ? undefined : sent.type) ?? 'application/octet-stream'
    const url = this.url(path, query)
    let sending: ClientRequest | undefined
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, { method, headers }, resolve)
      sending = req
      /** The body failed (a local file that cannot be read): its error is the request's, and names the file. */
      let bodyFailed = false
      req.on('error', (err: any) => {
        if (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' && body === undefined) {
          reject(this.notAnswering())
        } else if (!bodyFailed && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          // the connection broke while the body went out: the daemon's side, not the file's
          reject(new BrokenStreamError(`the daemon closed the connection while the upload went on (${String(err.code)}): did the daemon stop?`))
        } else reject(err)
      })
      if (body === undefined) req.end()
      else {
        body.on('error', err => { bodyFailed = true; req.destroy(err) })
        body.pipe(req)
      }
    })
    if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) return res
    const text = await readAll(res)
    // refused while the body was still going out: stop sending it
    if (body !== undefined && sending !== undefined && !sending.writableFinished) {
      body.destroy()
      sending.destroy()
    }
    throw apiError(res.statusCode ?? 500, text)
  }

  /**
   * GET `path` and write the answer's body straight to `target` (stdout for
   * `cat`): no HTTP client streams in between (cli/fd-download.ts).
   *
   * @throws {ApiError} for a non-2xx answer
   * @throws {DaemonNotRunningError} when no daemon answers
   * @throws {TruncatedResponseError} when the answer ends mid-body
   * @returns the report of a diverted answer (see `options.divert`), else undefined
   */
  async download (path: string, query: Query, target: FdTarget, options: { divert?: (headers: Map<string, string>) => boolean } = {}): Promise<string | undefined> {
    const url = this.url(path, query)
    let result
    let stream: string | undefined
    try {
      result = await downloadToFd({ url, headers: { authorization: `Bearer ${this.token}` }, onHead: (_status, headers) => { stream = headers.get(STREAM_ID_HEADER) }, divert: options.divert }, target)
    } catch (err: any) {
      if (err?.code === 'ECONNREFUSED') throw this.notAnswering()
      throw err instanceof TruncatedResponseError ? await this.whyCut(stream, err) : err
    }
    if (!result.ok) throw apiError(result.status, result.body)
    return result.report
  }

  /**
   * Pipe a streamed answer (from {@link send}) through `through` into `target`; when the
   * daemon cuts it, the error is the daemon's reason (see {@link whyCut}), else a
   * {@link TruncatedResponseError}; when `target` fails, its own error.
   */
  async receive (res: IncomingMessage, through: NodeJS.ReadWriteStream, target: NodeJS.WritableStream): Promise<void> {
    // a write that failed (EPIPE, a full disk) is the writer's error, not the daemon's,
    // even mid-answer: the daemon, seeing this reader go, records only that it went
    let writeError: unknown
    const onWriteError = (err: unknown): void => { writeError ??= err }
    target.once('error', onWriteError)
    try {
      await pipeline(res, through, target)
    } catch (err: any) {
      if (writeError !== undefined) throw writeError
      if (res.complete) throw err
      // Node's own error for a connection cut mid-answer is a bare `Error: aborted`: named, with what it means
      const cut = new TruncatedResponseError(`the daemon's answer ended early (in its body: ${String(err?.message ?? err)}): did the daemon stop?`, { cause: err })
      throw await this.whyCut(firstHeader(res.headers[STREAM_ID_HEADER]), cut)
    } finally {
      target.off('error', onWriteError)
    }
  }

  /**
   * Why the daemon cut a streamed answer after it began: its own error (a
   * corrupt block with no other copy, a stripe that cannot be rebuilt…),
   * recorded under the answer's id (node/api/stream-errors.ts); `cut` when
   * it has none to give (a daemon that stopped).
   */
  async whyCut (stream: string | undefined, cut: Error): Promise<Error> {
    if (stream === undefined) return cut
    try {
      const { error } = await this.json<{ error: { name: string, message: string } }>('GET', '/api/v0/stream/error', { id: stream })
      return new ApiError(500, error.name, error.message)
    } catch {
      return cut
    }
  }

  /**
   * Send a request with `progress=true` and follow its progress stream:
   * `onProgress` gets every progress line; resolves with the result line.
   *
   * @throws {ApiError} the daemon's error, up front or as the stream's last line
   * @throws {BrokenStreamError} when the stream ends without a result
   */
  async withProgress<P, R = any>(method: 'GET' | 'POST', path: string, query: Query, options: { body?: Readable | SizedBody, onProgress: (update: P) => void }): Promise<R> {
    const res = await this.send(method, path, { ...query, progress: true }, options.body)
    return await readProgressStream<P, R>(res, options.onProgress)
  }

  /** Send a request and parse its JSON answer. */
  async json<T = any>(method: 'GET' | 'POST', path: string, query: Query = {}, body?: Readable | SizedBody): Promise<T> {
    const res = await this.send(method, path, query, body)
    return JSON.parse(await readAll(res)) as T
  }
}

async function readAll (res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = []
  for await (const part of res) parts.push(part)
  return Buffer.concat(parts).toString('utf8')
}

/**
 * Read a progress stream: JSON lines `{progress}`…, then `{result}` or
 * `{error: {name, message}}` (node/api/progress.ts). `onProgress` gets each
 * progress value in order. Each chunk is scanned once (lines are cut on
 * the newline byte), and a line longer than `maxLineBytes` bytes is refused.
 *
 * @throws {ApiError} carrying the error line's name and message
 * @throws {BrokenStreamError} for a stream cut or ended before its last line, a line that is not JSON, or one too long
 */
export async function readProgressStream<P, R> (source: AsyncIterable<Buffer | string>, onProgress: (update: P) => void, maxLineBytes = MAX_PROGRESS_LINE_BYTES): Promise<R> {
  // the bytes of the line not ended yet: each chunk is scanned once, and a
  // newline byte never occurs inside a UTF-8 character, so lines are cut on bytes
  let pending: Buffer[] = []
  let pendingBytes = 0
  const tooLong = (): BrokenStreamError => new BrokenStreamError(`a line of the daemon's progress stream is longer than ${maxLineBytes} bytes`)
  const take = (line: string): { done: true, result: R } | undefined => {
    if (line.trim() === '') return undefined
    let value: any
    try { value = JSON.parse(line) } catch { throw new BrokenStreamError(`the daemon's progress stream carried a line that is not JSON: ${JSON.stringify(line.slice(0, 80))}`) }
    if (value !== null && typeof value === 'object') {
      if ('progress' in value) { onProgress(value.progress as P); return undefined }
      if ('result' in value) return { done: true, result: value.result as R }
      if ('error' in value && typeof value.error?.name === 'string' && typeof value.error?.message === 'string') throw new ApiError(500, value.error.name, value.error.message)
    }
    throw new BrokenStreamError(`the daemon's progress stream carried an unknown line: ${JSON.stringify(line.slice(0, 80))}`)
  }
  const takePending = (): { done: true, result: R } | undefined => {
    const line = Buffer.concat(pending, pendingBytes).toString('utf8')
    pending = []
    pendingBytes = 0
    return take(line)
  }
  try {
    for await (const chunk of source) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk
      let start = 0
      let nl = bytes.indexOf(0x0a, start)
      while (nl >= 0) {
        if (pendingBytes + nl - start > maxLineBytes) throw tooLong()
        pending.push(bytes.subarray(start, nl))
        pendingBytes += nl - start
        const end = takePending()
        if (end !== undefined) return end.result
        start = nl + 1
        nl = bytes.indexOf(0x0a, start)
      }
      if (start < bytes.length) {
        pending.push(bytes.subarray(start))
        pendingBytes += bytes.length - start
      }
      if (pendingBytes > maxLineBytes) throw tooLong()
    }
  } catch (err: any) {
    if (err instanceof ShoalError) throw err
    throw new BrokenStreamError(`the daemon's answer was cut before its result (${String(err?.code ?? err?.message ?? err)}): did the daemon stop?`)
  }
  // a last line without its newline still counts
  const end = takePending()
  if (end !== undefined) return end.result
  throw new BrokenStreamError('the daemon\'s answer ended before its result: did the daemon stop?')
}

/** A header's value (the first, when it came more than once). */
function firstHeader (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
