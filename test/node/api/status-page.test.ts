/**
 * The status page, end to end: two real daemons in one private swarm, a file
 * added through the CLI, and the page served by the first daemon, opened in
 * a real headless Chromium (Debian's `chromium`, driven by playwright-core).
 * Also: the page's static files are the only thing served without the
 * token (request targets sent raw, as a client may send them), the status
 * endpoints validate their input and list pins worst first, `shoal ui`
 * prints a link that logs in (opened, or pasted into an open page), and a
 * stopped daemon leaves its figures marked as not current.
 *
 * The screenshots are kept (not in a temp dir): in `$SHOAL_TEST_ARTIFACTS`,
 * else `<tmpdir>/shoal-test-artifacts/`, as `status-page.png` (logged in) and
 * `status-page-login.png` (a wrong token), overwritten at each run.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { randomBytes } from '../../helpers/bytes.js'
import { tempDir } from '../../helpers/temp.js'
import { eventually, initSwarm, runShoal, shoalJson, shoalOk, startDaemon, suiteContext, type TestDaemon } from '../../helpers/cli.js'
import { statusRoutes } from '../../../node/api/status-routes.js'

const TEST = { timeout: 120_000 }
const CHROMIUM = '/usr/bin/chromium'
/** Bound of every wait for the page. */
const PAGE_WAIT_MS = 45_000
/** The states of a fresh pin of a live swarm once its placement ended. */
const SETTLED = ['healthy', 'at-risk', 'pending', 'not-coded']
const ARTIFACTS = process.env.SHOAL_TEST_ARTIFACTS ?? join(tmpdir(), 'shoal-test-artifacts')
const PAGE_FILES: Array<[string, RegExp]> = [
  ['/', /^text\/html/],
  ['/ui/app.js', /^text\/javascript/],
  ['/ui/charts.js', /^text\/javascript/],
  ['/ui/style.css', /^text\/css/],
  ['/ui/icon.svg', /^image\/svg\+xml/]
]

describe('status page', () => {
  const ctx = suiteContext()
  let a: TestDaemon
  let b: TestDaemon
  let aId: string
  let bId: string
  let browser: Browser | undefined

  before(async () => {
    const dir = await tempDir(ctx, 'shoal-status-page-')
    const [ra, rb] = await initSwarm(dir, ['a', 'b'])
    ;[a, b] = await Promise.all([startDaemon(ctx, ra), startDaemon(ctx, rb)])
    aId = (await shoalJson(a.repo, ['id'])).id
    const bInfo = await shoalJson(b.repo, ['id'])
    bId = bInfo.id
    await shoalOk(a.repo, ['peers', 'connect', String(bInfo.addresses[0])])
    const file = join(dir, 'report.bin')
    await writeFile(file, randomBytes(300_000, 19))
    await shoalOk(a.repo, ['add', file, '--to', '/docs/report.bin'])
    // its replica placed on b before any test reads the pins' status: checked while the push is under way,
    // the file is `degraded` (only a holds it), and the status page keeps a job's answer for RESULT_TTL_MS
    await eventually('/docs/report.bin placed', async () => {
      const { state } = await shoalJson<{ state: string }>(a.repo, ['pin', 'status', '/docs/report.bin'])
      return SETTLED.includes(state)
    }, 60_000)
  })

  /** The browser, launched once for the tests that need it and closed at the end. */
  async function launch (): Promise<Browser> {
    if (browser !== undefined) return browser
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium) to test the status page`)
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60_000
    })
    return browser
  }
  after(async () => { await browser?.close() })

  /** A new tab (closed with its context when the test ends, failed or not). */
  async function newPage (t: { after: (fn: () => Promise<void>) => void }): Promise<Page> {
    const context = await (await launch()).newContext({ viewport: { width: 1440, height: 900 } })
    t.after(async () => { await context.close() })
    const page = await context.newPage()
    page.setDefaultTimeout(PAGE_WAIT_MS)
    return page
  }

  async function get (path: string, opts: { token?: string, method?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }
    return await fetch(new URL(path, a.url), { method: opts.method ?? 'GET', headers, signal: AbortSignal.timeout(30_000) })
  }

  it('serves the page files without the token, holding no node data', TEST, async () => {
    for (const [path, type] of PAGE_FILES) {
      const res = await get(path)
      const text = await res.text()
      assert.equal(res.status, 200, `${path}: ${text}`)
      assert.match(res.headers.get('content-type') ?? '', type)
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/)
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
      assert.ok(!text.includes(aId), `${path} names the node`)
      assert.ok(!text.includes(a.token), `${path} holds the token`)
    }
    const head = await get('/', { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(await head.text(), '')
  })

  it('every other path and method still needs the token', TEST, async () => {
    const refused: Array<[string, string]> = [
      ['GET', '/index.html'], ['GET', '/ui/'], ['GET', '/ui/other.js'], ['GET', '/ui/../node/api/server.ts'],
      ['POST', '/'], ['POST', '/ui/app.js'], ['GET', '/health'], ['GET', '/metrics'], ['GET', '/api/v0/status'],
      ...statusRoutes.map((r): [string, string] => [r.method, r.path])
    ]
    for (const [method, path] of refused) {
      const res = await get(path, { method })
      const body = await res.json() as { error: { name: string } }
      assert.equal(res.status, 401, `${method} ${path}`)
      assert.equal(body.error.name, 'UnauthorizedError')
    }
  })

  it('request targets that leave /ui/ or bend its paths, sent as raw bytes, are not page files', TEST, async () => {
    const { hostname, port } = new URL(a.url)
    // fetch and http.request would normalise `..` and `%2e%2e` before sending
    const raw = async (target: string): Promise<{ head: string, body: string }> => await new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port) })
      let text = ''
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer to ${target}`)) }, 15_000)
      socket.setEncoding('utf8').on('data', (s: string) => { text += s })
      socket.once('end', () => {
        clearTimeout(timer)
        const at = text.indexOf('\r\n\r\n')
        resolve({ head: text.slice(0, at), body: text.slice(at + 4) })
      })
      socket.once('error', err => { clearTimeout(timer); reject(err) })
      socket.once('connect', () => { socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`) })
    })
    for (const target of ['/ui/../api/v0/id', '/ui/%2e%2e/api/v0/id', '/ui/%2E%2E/api/v0/status', '/ui//app.js', '/ui/../node/api/ui/app.js', '/ui/%2e%2e/%2e%2e/package.json', '/ui/./app.js/']) {
      const { head, body } = await raw(target)
      assert.match(head, /^HTTP\/1\.1 401 /, `${target}: ${head.split('\r\n')[0]}`)
      assert.equal(JSON.parse(body).error.name, 'UnauthorizedError', target)
      assert.ok(!body.includes(aId), `${target} names the node`)
    }
    // the page's own files, sent as they are, still are
    assert.match((await raw('/ui/app.js')).head, /^HTTP\/1\.1 200 /)
  })

  it('status endpoints answer with the token and refuse a bad limit', TEST, async () => {
    const node = await (await get('/api/v0/status/node', { token: a.token })).json() as any
    assert.equal(node.id, aId)
    assert.equal(node.swarm, 'private')
    assert.match(node.version, /^\d+\.\d+\.\d+/)
    assert.ok(node.disk.total > 0 && node.disk.free > 0 && node.disk.free <= node.disk.total, JSON.stringify(node.disk))

    await eventually('b among a\'s status peers', async () => {
      const peers = await (await get('/api/v0/status/peers', { token: a.token })).json() as any[]
      return peers.some(p => p.id === bId && typeof p.connectedSince === 'number' && p.bytesIn > 0 && p.bytesOut > 0)
    })

    const changes = await (await get('/api/v0/status/changes?limit=5', { token: a.token })).json() as any[]
    assert.ok(changes.length >= 1 && changes.length <= 5)
    assert.ok(changes.some(c => c.author === aId && c.changes.some((op: any) => op.op === 'put' && op.path === '/docs/report.bin' && op.size === 300_000)), JSON.stringify(changes))
    assert.ok(changes.every((c, i) => i === 0 || changes[i - 1].time >= c.time), 'newest first')

    // its health comes from a shared check job: bounded polling until the job reached it
    let pins: any
    await eventually('the pin checked', async () => {
      pins = await (await get('/api/v0/status/pins', { token: a.token })).json()
      return pins.pins[0]?.state !== 'unknown'
    })
    assert.equal(pins.total, 1)
    assert.equal(pins.unknown, 0)
    const pin = pins.pins[0]
    assert.equal(pin.path, '/docs/report.bin')
    assert.equal(pin.error, undefined, JSON.stringify(pin.error))
    assert.ok(SETTLED.includes(pin.state), `a fresh pin of a live swarm: ${String(pin.state)}`)
    assert.ok(typeof pin.checkedAt === 'number' && pin.checkedAt <= Date.now())
    const { summary, stripeCount, stripes, peersAsked } = pin.status
    assert.equal(summary.healthy + summary.atRisk + summary.degraded + summary.lost, stripeCount, JSON.stringify(pin.status))
    assert.equal(stripes.length, Math.min(stripeCount, 1024))
    assert.ok(peersAsked >= 1, 'this node at least')

    for (const query of ['limit=0', 'limit=201', 'limit=abc', 'limit=-1', 'limit=5&limit=6', 'bogus=1']) {
      const res = await get(`/api/v0/status/changes?${query}`, { token: a.token })
      const body = await res.json() as { error: { name: string, message: string } }
      assert.equal(res.status, 400, query)
      assert.equal(body.error.name, 'InvalidArgumentError')
    }
    const res = await get('/api/v0/status/node?x=1', { token: a.token })
    assert.equal(res.status, 400)
    await res.body?.cancel()
  })

  it('shoal ui prints the page address with the token in its fragment', TEST, async () => {
    const link = await shoalJson<{ url: string, page: string }>(a.repo, ['ui'])
    assert.equal(link.page, `${a.url}/`)
    assert.equal(link.url, `${a.url}/#token=${encodeURIComponent(a.token)}`)
    const human = await runShoal(['--repo', a.repo, 'ui'])
    assert.equal(human.code, 0)
    assert.equal(human.stdout.toString('utf8'), `${link.url}\n`)
    assert.match(human.stderr, /holds the API token/)
    // no daemon: a clear one-line error
    const repo = join(await tempDir(ctx, 'shoal-ui-'), 'repo')
    await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    const none = await runShoal(['--repo', repo, 'ui'])
    assert.equal(none.code, 1)
    assert.match(none.stderr, /DaemonNotRunningError/)
  })

  it('a wrong token gets a clear message and shows nothing of the node', TEST, async t => {
    const page = await newPage(t)
    await page.goto(`${a.url}/`)
    await page.locator('#token').fill('not-the-token')
    await page.locator('#login-form button[type=submit]').click()
    const error = page.locator('#login-error')
    await error.waitFor({ state: 'visible' })
    assert.match(await error.innerText(), /Wrong token: the node refused it/)
    assert.equal(await page.locator('#dashboard').isVisible(), false)
    assert.ok(!(await page.content()).includes(aId), 'the page shows the peer id without the token')
    await mkdir(ARTIFACTS, { recursive: true })
    const shot = join(ARTIFACTS, 'status-page-login.png')
    await page.screenshot({ path: shot })
    t.diagnostic(`screenshot: ${shot}`)
  })

  it('a wrong token in the fragment is refused the same way', TEST, async t => {
    // a fresh page: no message left by an earlier step
    const page = await newPage(t)
    await page.goto(`${a.url}/#token=wrong`)
    const error = page.locator('#login-error')
    await error.waitFor({ state: 'visible' })
    assert.match(await error.innerText(), /Wrong token: the node refused it/)
    assert.equal(new URL(page.url()).hash, '', 'the token left the address bar')
    assert.equal(await page.locator('#dashboard').isVisible(), false)
  })

  it('logged in, it shows the node, its peer, the file, its pin, the disk and the graphs', TEST, async t => {
    const page = await newPage(t)
    await page.goto(`${a.url}/`)
    await page.locator('#token').fill(a.token)
    await page.locator('#login-form button[type=submit]').click()
    await page.locator('#dashboard').waitFor({ state: 'visible' })

    await page.locator('#peer-id', { hasText: aId }).waitFor()
    await page.locator('#peers td', { hasText: bId }).first().waitFor()
    await page.locator('#pins td', { hasText: '/docs/report.bin' }).first().waitFor()
    await page.locator('#changes td', { hasText: '/docs/report.bin' }).first().waitFor()
    // the pin's health once the check job reached it (the first answers may say "not checked yet")
    await page.locator('#pins .badge', { hasText: /^(healthy|at risk|placing|not coded)$/ }).first().waitFor()
    const used = await page.locator('#disk-used').innerText()
    const free = await page.locator('#disk-free').innerText()
    assert.match(used, /^\d+(\.\d)? (B|KiB|MiB|GiB)$/, `disk used: ${used}`)
    assert.match(free, /^\d+(\.\d)? (B|KiB|MiB|GiB|TiB)$/, `disk free: ${free}`)
    assert.match(await page.locator('#disk').innerText(), /blocks \d+(\.\d)? (B|KiB|MiB|GiB)/)
    // the latency: the connection monitor's or a ping's, within a refresh or two
    await page.locator('#peers td', { hasText: /^\d+ ms$/ }).first().waitFor()
    assert.match(await page.locator('#node').innerText(), /private swarm/)
    // the network graph draws rates between samples of the counters: two of them are in after two more refreshes
    await page.waitForFunction(() => Number((globalThis as any).document.querySelector('#charts figure')?.dataset.points ?? 0) >= 2, undefined, { timeout: PAGE_WAIT_MS })
    assert.match(await page.locator('#charts figcaption').first().innerText(), /in \d+(\.\d)? (B|KiB|MiB)\/s/)
    // a refresh that read everything: no banner, nothing marked stale, "updated" set
    await page.waitForFunction(() => {
      const doc = (globalThis as any).document
      return doc.querySelector('#banner').hidden === true && /^updated /.test(doc.querySelector('#updated').textContent)
    }, undefined, { timeout: PAGE_WAIT_MS })
    assert.equal(await page.locator('section.stale').count(), 0)

    await mkdir(ARTIFACTS, { recursive: true })
    const shot = join(ARTIFACTS, 'status-page.png')
    await page.screenshot({ path: shot, fullPage: true })
    t.diagnostic(`screenshot: ${shot}`)
  })

  it('a link with #token= logs in and the token leaves the address bar', TEST, async t => {
    const page = await newPage(t)
    const link = await shoalJson<{ url: string }>(a.repo, ['ui'])
    await page.goto(link.url)
    await page.locator('#peer-id', { hasText: aId }).waitFor()
    assert.equal(new URL(page.url()).hash, '')
    // logging out forgets it: the form is back, the cards are empty
    await page.locator('#logout').click()
    await page.locator('#login-form').waitFor({ state: 'visible' })
    assert.equal(await page.evaluate('sessionStorage.getItem("shoal.token")'), null)
    assert.equal(await page.locator('#node').innerText(), '')
    assert.equal(await page.locator('#peers').innerText(), '')
    // the same link pasted into the open page (only the fragment changes, the page is not loaded again): it logs in
    await page.evaluate('globalThis.sameDocument = true')
    await page.goto(link.url)
    await page.locator('#peer-id', { hasText: aId }).waitFor()
    assert.equal(await page.evaluate('globalThis.sameDocument'), true, 'the page was not reloaded')
    assert.equal(new URL(page.url()).hash, '')
  })

  it('a daemon that stops leaves its figures marked as not current, and the page says it is down', TEST, async t => {
    const c = await startDaemon(t)
    const cId = (await shoalJson(c.repo, ['id'])).id
    const page = await newPage(t)
    await page.goto(`${c.url}/`)
    await page.locator('#token').fill(c.token)
    await page.locator('#login-form button[type=submit]').click()
    await page.locator('#peer-id', { hasText: cId }).waitFor()
    await page.locator('#updated', { hasText: /^updated / }).waitFor()
    await c.stop()
    const banner = page.locator('#banner')
    await banner.waitFor({ state: 'visible' })
    assert.match(await banner.innerText(), /does not answer .*is its daemon running\?/)
    assert.equal(await banner.getAttribute('data-kind'), 'down')
    // the last figures stay, marked
    assert.match(await page.locator('#peer-id').innerText(), new RegExp(cId))
    // every card, those not asked at the last refresh (pins, every third) too
    await page.locator('#pins').locator('xpath=ancestor::section[contains(@class, "stale")]').waitFor()
    assert.equal(await page.locator('#dashboard section.stale').count(), await page.locator('#dashboard section').count(), 'every card is marked')
    assert.match(await page.locator('#updated').innerText(), /^last complete read /)
    const shot = join(ARTIFACTS, 'status-page-down.png')
    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: shot, fullPage: true })
    t.diagnostic(`screenshot: ${shot}`)
  })
})
