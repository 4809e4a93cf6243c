/**
 * The status page's static files, served by the API server without the API
 * token: they hold no node data (the page reads everything through the
 * token-protected JSON API, with the token the user gives it).
 *
 * Why files beside this module and not strings in it: the page stays plain
 * HTML, CSS and JavaScript that a newcomer reads and edits as such. tsc does
 * not copy them into dist/, so they are read from the source tree
 * (`node/api/ui/` under the package root, node/package-files.ts), whether
 * this module runs from tsc's output or from the bundle. Each is read once,
 * at its first request (they are a few KiB).
 *
 * Every answer carries a strict Content-Security-Policy (only this origin's
 * own scripts, styles and API; no inline code; no framing) and no-cache, so
 * a daemon upgraded under an open page serves the new page at the next load.
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { packageFile } from '../../package-files.js'
import { sendError } from '../http.js'
import type { ServerResponse } from 'node:http'
import type { Logger } from '../../logger.js'

/** One file of the page. */
interface Asset {
  /** File name in `node/api/ui/`. */
  file: string
  type: string
}

/** URL path → file. Only these paths are served without the token. */
const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ['/', { file: 'index.html', type: 'text/html; charset=utf-8' }],
  ['/ui/style.css', { file: 'style.css', type: 'text/css; charset=utf-8' }],
  ['/ui/app.js', { file: 'app.js', type: 'text/javascript; charset=utf-8' }],
  ['/ui/charts.js', { file: 'charts.js', type: 'text/javascript; charset=utf-8' }],
  ['/ui/icon.svg', { file: 'icon.svg', type: 'image/svg+xml' }]
])

/** Headers of every page file. */
const HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache'
}

/** The folder holding the page's files. */
function assetDir (): string {
  return packageFile('node', 'api', 'ui')
}

const cache = new Map<string, Buffer>()

/** True when `method path` is one of the page's files (served without the token). */
export function isPageAsset (method: string | undefined, path: string): boolean {
  return (method === 'GET' || method === 'HEAD') && ASSETS.has(path)
}

/** Files whose failure to read was logged at error level already (once each; later failures log at debug). */
const reported = new Set<string>()

/**
 * Answer `GET`/`HEAD` of a page file. A file that cannot be read (a broken
 * install) is a 500 `PageUnavailableError` that names no path (the caller
 * has no token); where it was looked for goes to the log, at error level
 * the first time, at debug level after.
 */
export async function sendPageAsset (res: ServerResponse, method: string, path: string, log: Pick<Logger, 'error' | 'debug'>): Promise<void> {
  const asset = ASSETS.get(path)
  if (asset === undefined) throw new Error(`${path} is not a page file`)
  let body = cache.get(asset.file)
  if (body === undefined) {
    const dir = assetDir()
    try {
      body = await readFile(join(dir, asset.file))
    } catch (err: any) {
      const fields = { file: asset.file, dir, code: err?.code, err: err?.message }
      const message = 'status page file cannot be read: is the source tree (node/api/ui/) beside dist/?'
      if (reported.has(asset.file)) log.debug(fields, message)
      else { reported.add(asset.file); log.error(fields, message) }
      sendError(res, 500, 'PageUnavailableError', 'the status page\'s files are missing from this install (the daemon\'s log says where they were looked for)')
      return
    }
    cache.set(asset.file, body)
  }
  res.writeHead(200, { ...HEADERS, 'content-type': asset.type, 'content-length': body.byteLength })
  res.end(method === 'HEAD' ? undefined : body)
}
