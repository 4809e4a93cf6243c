import { randomBytes } from 'node:crypto'
import { formatSwarmKey } from '../../protocol/swarm-key.js'
import { ApiClient } from '../client.js'
import { printJson, printLines, type GlobalOptions } from '../output.js'
import type { PeerStatus } from '../../node/peers/index.js'

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
  const s = await client.json<{ id: string, addresses: string[], swarm: string, peers: number, blockstoreBytes: number, repo: string }>('GET', '/api/v0/status')
  if (g.json) { printJson(s); return }
  printLines(
    `peer id:  ${s.id}`,
    `swarm:    ${s.swarm === 'private' ? 'private (swarm key)' : 'open (no swarm key: any Shoal node can connect)'}`,
    `peers:    ${s.peers}`,
    `blocks:   ~${s.blockstoreBytes} bytes on disk`,
    `repo:     ${s.repo}`,
    ...s.addresses.map(a => `listening ${a}`)
  )
}
