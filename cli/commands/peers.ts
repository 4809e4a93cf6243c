import { randomBytes } from 'node:crypto'
import { formatSwarmKey } from '../../protocol/swarm-key.js'
import { ApiClient } from '../client.js'
import { formatBytes, formatSummary, printJson, printLines, type GlobalOptions } from '../output.js'
import type { DurabilityHealth } from '../../node/durability/index.js'
import type { PeerStatus } from '../../node/peers/index.js'
import type { InviteInfo } from '../../node/peers/invite.js'
import type { TrustStatus } from '../../node/peers/trust-admin.js'
import type { RepoDiskUsage } from '../../node/repo/disk-usage.js'

function formatPeer (p: PeerStatus): string {
  const latency = p.latencyMs === undefined ? '-' : `${p.latencyMs} ms`
  return `${p.id} ${p.direction.padEnd(8)} ${latency.padStart(8)} ${p.addresses.join(' ')}`
}

/** `shoal peers ls`. */
export async function peersLsCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const peers = await client.json<PeerStatus[]>('GET', '/api/v0/peers/ls')
  if (g.json) printJson(peers)
  else printLines(...peers.map(formatPeer))
}

/** `shoal peers connect MULTIADDR`. */
export async function peersConnectCommand (g: GlobalOptions, addr: string): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const peer = await client.json<PeerStatus>('POST', '/api/v0/peers/connect', { addr })
  if (g.json) printJson(peer)
  else printLines(`connected to ${peer.id}`)
}

/** `shoal peers disconnect PEER`. */
export async function peersDisconnectCommand (g: GlobalOptions, peer: string): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const result = await client.json('POST', '/api/v0/peers/disconnect', { peer })
  if (g.json) printJson(result)
  else printLines(`disconnected from ${peer}`)
}

/** `shoal swarm key new`: print a new private-swarm key (no daemon needed). */
export async function swarmKeyNewCommand (g: GlobalOptions): Promise<void> {
  const key = formatSwarmKey(randomBytes(32))
  if (g.json) printJson({ key })
  else process.stdout.write(key)
}

/** `shoal status`. */
export async function statusCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const s = await client.json<{ id: string, addresses: string[], swarm: string, writers: string, peers: number, blockstoreBytes: number, disk: RepoDiskUsage, repo: string, gateway: string | null, durability?: DurabilityHealth }>('GET', '/api/v0/status')
  if (g.json) { printJson(s); return }
  const d = s.durability
  printLines(
    `peer id:  ${s.id}`,
    `swarm:    ${s.swarm === 'private' ? 'private (swarm key)' : 'open (no swarm key: any Shoal node can connect)'}`,
    `writers:  ${s.writers} (shoal trust ls)`,
    `peers:    ${s.peers}`,
    `disk:     ${formatDisk(s.disk)}`,
    d === undefined
      ? 'health:   not checked yet (the repair pass runs every durability.checkInterval; `shoal repair --wait` now)'
      : `health:   ${d.stripes} stripes of ${d.manifests} coded file${d.manifests === 1 ? '' : 's'}: ${formatSummary(d)}${d.uncoded > 0 ? `; ${d.uncoded} file${d.uncoded === 1 ? '' : 's'} not coded yet, waiting for live nodes` : ''} (checked ${Math.max(0, Math.round((Date.now() - d.at) / 1000))} s ago)`,
    `repo:     ${s.repo}`,
    `gateway:  ${s.gateway === null ? 'off (shoal config set gateway 127.0.0.1:PORT)' : `${s.gateway}/ipfs/`}`,
    ...s.addresses.map(a => `listening ${a}`)
  )
}

/** The `disk:` line of `shoal status`: what the repo takes, by part, and what its disk has left. */
function formatDisk (d: RepoDiskUsage): string {
  const parts = `blocks ${formatBytes(d.blocksBytes)}, namespace ${formatBytes(d.namespaceBytes)}, other ${formatBytes(d.durabilityBytes + d.otherBytes)}`
  return `${formatBytes(d.repoBytes)} used by the repo (${parts}); ${formatBytes(d.freeBytes)} free of ${formatBytes(d.totalBytes)} on its disk`
}

/** `shoal invite`: the invite line on stdout (a secret in a private swarm), a reminder on stderr. */
export async function inviteCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const info = await client.json<InviteInfo>('GET', '/api/v0/invite')
  if (g.json) { printJson(info); return }
  printLines(info.invite)
  process.stderr.write(info.swarm === 'private'
    ? 'keep this invite secret: it holds the swarm key, and whoever has it can join, read and write everything (`shoal init --join INVITE` on the new node)\n'
    : 'this swarm is open: the invite only says where this node is (`shoal init --join INVITE`); run `shoal trust add PEER` here for the new node to write\n')
}

function formatTrust (t: TrustStatus): string[] {
  const who = t.everyone
    ? 'every member of this private swarm (namespace.writers: swarm)'
    : `this node and ${t.trusted.length} trusted peer${t.trusted.length === 1 ? '' : 's'}${t.swarm === 'open' ? ' (open swarm)' : ' (namespace.writers: listed)'}`
  return [`writers: ${who}`, `self:    ${t.self}`, ...t.trusted.map(p => `trusted: ${p}`)]
}

/** `shoal trust ls`. */
export async function trustLsCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const status = await client.json<TrustStatus>('GET', '/api/v0/trust/ls')
  if (g.json) printJson(status)
  else printLines(...formatTrust(status))
}

/** `shoal trust add|rm PEER`. */
export async function trustChangeCommand (g: GlobalOptions, action: 'add' | 'rm', peer: string): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const status = await client.json<TrustStatus>('POST', `/api/v0/trust/${action}`, { peer })
  if (g.json) printJson(status)
  else printLines(action === 'add' ? `trusted ${peer}` : `no longer trusted: ${peer}`, ...formatTrust(status))
}

/** `shoal trust writers swarm|listed`. */
export async function trustWritersCommand (g: GlobalOptions, mode: 'swarm' | 'listed'): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const status = await client.json<TrustStatus>('POST', '/api/v0/trust/writers', { mode })
  if (g.json) printJson(status)
  else printLines(...formatTrust(status))
}
