import { readFile } from 'node:fs/promises'
import { InvalidArgumentError } from '../../node/errors.js'
import { ApiClient } from '../client.js'
import { printJson, printLines, type GlobalOptions } from '../output.js'
import { launchedByCli } from '../relaunch.js'

/** `shoal init`: create a repo. */
export async function initCommand (g: GlobalOptions, opts: { listen?: string[], api?: string, swarmKey?: string, join?: string, open?: boolean }): Promise<void> {
  let swarmKey: string | undefined
  if (opts.swarmKey !== undefined) {
    swarmKey = await readFile(opts.swarmKey, 'utf8').catch((err: any) => {
      throw new InvalidArgumentError(`cannot read swarm key ${opts.swarmKey}: ${String(err.code ?? err.message)}`)
    })
  }
  const { initRepo } = await import('../../node/repo/init.js')
  const result = await initRepo(g.repo, { listen: opts.listen, api: opts.api, swarmKey, join: opts.join, open: opts.open })
  const swarm = result.config.privateSwarm ? 'private' : 'open'
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

/** `shoal daemon`: run until SIGINT/SIGTERM. */
export async function daemonCommand (g: GlobalOptions, opts: { init?: boolean }): Promise<void> {
  const { startDaemon } = await import('../../node/daemon.js')
  const daemon = await startDaemon({ repo: g.repo, init: opts.init })
  if (g.json) printJson({ id: daemon.node.components.peerId, api: daemon.apiMultiaddr, repo: g.repo })
  else printLines(`Shoal daemon ready: peer ${daemon.node.components.peerId}`, `API at ${daemon.apiUrl} (${daemon.apiMultiaddr})`)
  await new Promise<void>(resolve => {
    let stopping = false
    const shutdown = (why: string): void => {
      // a terminal's Ctrl-C reaches both the CLI parent and this process,
      // and the parent forwards it too: only the first one counts
      if (stopping) return
      stopping = true
      if (!g.json) process.stderr.write(`${why}, shutting down\n`)
      daemon.stop().then(resolve, err => {
        process.stderr.write(`error during shutdown: ${String(err?.message ?? err)}\n`)
        process.exitCode = 1
        resolve()
      })
    }
    process.on('SIGINT', () => { shutdown('received SIGINT') })
    process.on('SIGTERM', () => { shutdown('received SIGTERM') })
    process.on('SIGHUP', () => { shutdown('received SIGHUP') })
    if (launchedByCli()) {
      // the CLI process that started us is gone (even if it was SIGKILLed)
      process.once('disconnect', () => { shutdown('parent process exited') })
      process.channel?.unref()
    }
  })
}

/** `shoal id`: peer id and addresses. */
export async function idCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const id = await client.json<{ id: string, addresses: string[], listen: string[] }>('GET', '/api/v0/id')
  if (g.json) printJson(id)
  else printLines(`peer id: ${id.id}`, ...(id.addresses.length > 0 ? id.addresses : id.listen.map(a => `${a} (configured)`)))
}
