import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import { readFile } from 'node:fs/promises'
import { apiUrlFromMultiaddr } from '../protocol/api-address.js'
import { DaemonNotRunningError, RepoNotFoundError, ShoalError } from '../node/errors.js'
import { repoLayout } from '../node/repo/layout.js'
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

/** A request body whose length is known: sent with a Content-Length (the daemon checks room for it first). */
export interface SizedBody { stream: Readable, length: number }

/** Query parameters; undefined values are left out. */
export type Query = Record<string, string | number | boolean | undefined>

function hint (repo: string): string {
  return `start one with \`shoal daemon --repo ${repo}\``
}

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

  /** Send a request; resolves with the response once its headers arrive (non-2xx → ApiError). */
  async send (method: 'GET' | 'POST', path: string, query: Query = {}, sent?: Readable | SizedBody): Promise<IncomingMessage> {
    const body = sent === undefined || 'pipe' in sent ? sent : sent.stream
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` }
    if (sent !== undefined && !('pipe' in sent)) headers['content-length'] = String(sent.length)
    // raw bytes, labelled as such (the API refuses bodies of other types)
    if (sent !== undefined) headers['content-type'] = 'application/octet-stream'
    const url = new URL(path, this.base)
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v))
    let sending: ClientRequest | undefined
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, { method, headers }, resolve)
      sending = req
      req.on('error', (err: any) => {
        if (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' && body === undefined) {
          reject(new DaemonNotRunningError(`no daemon answers at ${this.base} for repo ${this.repo}: ${hint(this.repo)}`))
        } else reject(err)
      })
      if (body === undefined) req.end()
      else {
        body.on('error', err => req.destroy(err))
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
    let name = 'ApiError'
    let message = `HTTP ${String(res.statusCode)}`
    try {
      const parsed = JSON.parse(text)
      name = parsed.error.name
      message = parsed.error.message
    } catch {}
    throw new ApiError(res.statusCode ?? 500, name, message)
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
