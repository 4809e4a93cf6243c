import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { InvalidArgumentError } from '../../node/errors.js'
import { ApiClient } from '../client.js'
import { printJson, printLines, type GlobalOptions } from '../output.js'
import { repoLayout } from '../../node/repo/layout.js'
import type { LogLevel } from '../../node/logger.js'
import { runDaemonProcess, shutdownTimeoutMs } from '../daemon-process.js'

/** `shoal init`: create a repo. */
export async function initCommand (g: GlobalOptions, opts: { listen?: string[], api?: string, swarmKey?: string, join?: string, open?: boolean }): Promise<void> {
  let swarmKey: string | undefined
  if (opts.swarmKey !== undefined) {
    swarmKey = await readFile(opts.swarmKey, 'utf8').catch((err: any) => {
      throw new InvalidArgumentError(`cannot read swarm key ${opts.swarmKey}: ${String(err.code ?? err.message)}`)
    })
  }
  // `--join -`: the invite from stdin, so that the secret is in no command line (`ps`, /proc, shell history)
  const join = opts.join === '-' ? await inviteFromStdin() : opts.join
  const { initRepo } = await import('../../node/repo/init.js')
  const result = await initRepo(g.repo, { listen: opts.listen, api: opts.api, swarmKey, join, open: opts.open })
  const swarm = result.config.privateSwarm ? 'private' : 'open'
  // a node that restarts on another port is dialled at its old one by the nodes that knew it (a whole swarm restarted
  // so stays apart): said once, here, where the choice is made
  if (result.config.listen.some(addr => /\/tcp\/0(\/|$)/.test(addr))) {
    process.stderr.write('shoal: note: a listen address with port 0 takes a new port at each start: the other nodes then reach this one only once it dials them, or they `shoal peers connect` its new address; give a fixed port (such as /ip4/0.0.0.0/tcp/4747, the default) to a node that restarts\n')
  }
  if (g.json) {
    printJson({ repo: result.repo, id: result.peerId, api: result.config.api, listen: result.config.listen, swarm, bootstrap: result.config.bootstrap })
    return
  }
  const how = opts.join !== undefined
    ? `joins the ${swarm} swarm of the invite; the daemon dials the inviter at start`
    : result.config.privateSwarm
      ? (swarmKey !== undefined ? 'private swarm of the given key' : 'a new private swarm: add nodes with `shoal invite` here and `shoal init --join INVITE` there')
      : 'open swarm: any Shoal node may connect; only trusted peers write the namespace (`shoal trust add`)'
  printLines(`initialized Shoal repo at ${result.repo}`, `peer id: ${result.peerId}`, `swarm: ${how}`)
}

/** Most bytes of stdin read for `--join -`: an invite is one line of a few hundred bytes. */
const MAX_INVITE_INPUT = 64 * 1024

/**
 * The invite of `shoal init --join -`: the first line of stdin, trimmed.
 *
 * @throws {InvalidArgumentError} when stdin is empty, or longer than any invite
 */
async function inviteFromStdin (): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer
    size += b.byteLength
    if (size > MAX_INVITE_INPUT) throw new InvalidArgumentError(`--join -: stdin holds more than ${MAX_INVITE_INPUT} bytes, not an invite`)
    chunks.push(b)
  }
  const invite = Buffer.concat(chunks).toString('utf8').split('\n')[0].trim()
  if (invite === '') throw new InvalidArgumentError('--join -: no invite on stdin (pipe the line `shoal invite` printed)')
  return invite
}

/** Options of `shoal daemon`. */
export interface DaemonCommandOptions {
  /** Create the repo with defaults if there is none. */
  init?: boolean
  /** The daemon's log level (`--log-level`, else `$SHOAL_LOG_LEVEL`, else the config's). */
  logLevel?: LogLevel
}

/**
 * Test fault: set to 1, the daemon's shutdown never finishes, so that the
 * shutdown timeout and a second signal can be tested on a real process.
 */
const FAULT_HANG_SHUTDOWN = 'SHOAL_FAULT_HANG_SHUTDOWN'

/**
 * Test fault: set to a path, the daemon's shutdown waits until that file
 * exists, then runs as usual, so that a test can deliver signals while a
 * shutdown is under way and still see it finish cleanly.
 */
const FAULT_HOLD_SHUTDOWN = 'SHOAL_FAULT_HOLD_SHUTDOWN'

/** Resolves once `path` exists (checked every 50 ms). */
async function fileAppears (path: string): Promise<void> {
  while (!existsSync(path)) await new Promise(resolve => setTimeout(resolve, 50))
}

/**
 * `shoal daemon`: run until SIGINT/SIGTERM/SIGHUP or the exit of the CLI
 * process that launched it; a stuck shutdown is forced (cli/daemon-process.ts).
 */
export async function daemonCommand (g: GlobalOptions, opts: DaemonCommandOptions): Promise<void> {
  const layout = repoLayout(g.repo)
  // in the log's format and at its level, as the node resolves it (a repo --init makes has the default, info)
  const [{ loadConfig }, { createNoticeWriter, resolveLogLevel }] = await Promise.all([import('../../node/repo/config.js'), import('../../node/logger.js')])
  const config = await loadConfig(layout.config).catch(() => ({ logLevel: 'info' as const }))
  const notice = createNoticeWriter(resolveLogLevel(opts.logLevel, config))
  const timeoutMs = shutdownTimeoutMs()
  const code = await runDaemonProcess({
    timeoutMs,
    files: { lock: layout.lock, api: layout.api, gateway: layout.gateway },
    say: line => { if (!g.json) notice(line) },
    // as cli/main.ts reports a failed command
    fail: err => { process.stderr.write((g.json ? JSON.stringify({ error: { name: err.name, message: err.message } }) : `shoal: ${err.message} (${err.name})`) + '\n') },
    start: async signal => {
      const { startDaemon } = await import('../../node/daemon.js')
      // half of the shutdown's time, so the rest of the stop has the other half before it is forced; a daemon stopping
      // on the repo (a killed one's node) is waited for as long as its stop may take, and a little more
      const daemon = await startDaemon({ repo: g.repo, init: opts.init, logLevel: opts.logLevel, placementWaitMs: timeoutMs / 2, stoppingWaitMs: timeoutMs + 5_000, signal })
      if (process.env[FAULT_HANG_SHUTDOWN] === '1') return { ...daemon, stop: async () => { await new Promise<void>(() => {}) } }
      const gate = process.env[FAULT_HOLD_SHUTDOWN]
      if (gate !== undefined && gate !== '') return { ...daemon, stop: async options => { await fileAppears(gate); await daemon.stop(options) } }
      return daemon
    },
    ready: daemon => {
      if (g.json) printJson({ id: daemon.node.components.peerId, api: daemon.apiMultiaddr, gateway: daemon.gatewayUrl ?? null, repo: g.repo })
      else printLines(`Shoal daemon ready: peer ${daemon.node.components.peerId}`, `API at ${daemon.apiUrl} (${daemon.apiMultiaddr})`, daemon.gatewayUrl === undefined ? 'gateway off' : `gateway at ${daemon.gatewayUrl}/ipfs/`)
    }
  })
  // the node has stopped (its stores closed, its log flushed, its mounts gone): exit now, not once the last timer a
  // library left running after its own stop has fired (libp2p's leave up to a second: cli/daemon-process.ts)
  process.exit(code)
}

/** `shoal id`: peer id and addresses. */
export async function idCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const id = await client.json<{ id: string, addresses: string[], listen: string[] }>('GET', '/api/v0/id')
  if (g.json) printJson(id)
  else printLines(`peer id: ${id.id}`, ...(id.addresses.length > 0 ? id.addresses : id.listen.map(a => `${a} (configured)`)))
}
