import { readFile } from 'node:fs/promises'
import { apiUrlFromMultiaddr } from '../../protocol/api-address.js'
import { repoLayout } from '../../node/repo/layout.js'
import { ApiClient } from '../client.js'
import { printJson, printLines, type GlobalOptions } from '../output.js'

/** What `shoal ui --json` prints. */
export interface UiLink {
  /** The page with the token in its fragment: opening it logs in. A secret. */
  url: string
  /** The page without the token (it asks for it). */
  page: string
}

/**
 * `shoal ui`: the status page's address with the API token in its fragment
 * (`#token=…`, which a browser never sends to the server; the page keeps it
 * for the tab and wipes it from the address bar). Checks first that the
 * daemon answers with this token.
 *
 * @throws {RepoNotFoundError} {DaemonNotRunningError}
 */
export async function uiCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  await client.json('GET', '/health')
  const layout = repoLayout(g.repo)
  const page = `${apiUrlFromMultiaddr(await readFile(layout.api, 'utf8'))}/`
  const token = (await readFile(layout.apiToken, 'utf8')).trim()
  const link: UiLink = { url: `${page}#token=${encodeURIComponent(token)}`, page }
  if (g.json) { printJson(link); return }
  printLines(link.url)
  process.stderr.write('this link holds the API token: whoever opens it controls the node (like <repo>/api.token); the page asks for the token when opened as ' + page + '\n')
}
