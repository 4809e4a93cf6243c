import { randomBytes } from 'node:crypto'
import { formatSwarmKey } from '../../protocol/swarm-key.js'
import { ApiClient } from '../client.js'
import { formatBytes, formatSpan, formatSummary, printJson, printLines, type GlobalOptions } from '../output.js'
import type { DurabilityHealth } from '../../node/durability/index.js'
import type { DamageStatus } from '../../node/api/damage-status.js'
import { damageLine } from '../damage-line.js'
import type { PeerStatus, UnreachablePeer } from '../../node/peers/index.js'
import type { InviteInfo } from '../../node/peers/invite.js'
import { refusalLine } from '../../node/peers/refusal-line.js'
import type { TrustStatus } from '../../node/peers/trust-admin.js'
import type { RepoDiskUsage } from '../../node/repo/disk-usage.js'
import type { KeptUncommitted } from '../../node/repo/uncommitted.js'
import type { ForgottenMember } from '../../node/peers/forget-member.js'

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

/** `shoal peers forget PEER`: a member whose node is gone for good stops holding back gc and compaction here (node/peers/forget-member.ts). */
export async function peersForgetCommand (g: GlobalOptions, peer: string): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const result = await client.json<ForgottenMember>('POST', '/api/v0/peers/forget', { peer })
  if (g.json) { printJson(result); return }
  printLines(...forgetLines(result, Date.now()))
}

/** What `peers forget` prints: what changed, what it cost, and what to do on the other nodes. */
export function forgetLines (r: ForgottenMember, now: number): string[] {
  const heard = r.seen > 0 ? ` (last heard of ${formatSpan(now - r.seen)} ago)` : ''
  return [
    `forgot ${r.peer}${heard}: gc and namespace compaction on this node no longer wait for it; if it comes back, it counts again`,
    ...(r.unapplied > 0 ? [`warning: its last clock named ${r.unapplied} write${r.unapplied === 1 ? '' : 's'} of its own this node never received: gone with it, unless another node holds them`] : []),
    'run `shoal peers forget` on every other node too: each node waits for the members it knows'
  ]
}

/** The status line naming the members forgotten here (`peers forget`) and not heard from since, when there are some. */
function forgottenLines (forgotten: Array<{ peer: string, at: number }>): string[] {
  if (forgotten.length === 0) return []
  const more = forgotten.length > 3 ? ` and ${forgotten.length - 3} more` : ''
  return [`forgotten: ${forgotten.slice(0, 3).map(f => f.peer).join(', ')}${more} (members gone for good, \`shoal peers forget\`: gc and compaction do not wait for them)`]
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
  const s = await client.json<{ id: string, addresses: string[], swarm: string, writers: string, ownWrites?: TrustStatus['ownWrites'], peers: number, unreachable?: UnreachablePeer[], blockstoreBytes: number, disk: RepoDiskUsage, repo: string, gateway: string | null, durability?: DurabilityHealth, damage?: DamageStatus, conflicts?: number, uncommitted?: KeptUncommitted, namespace?: { forgotten?: Array<{ peer: string, at: number }> } }>('GET', '/api/v0/status')
  if (g.json) { printJson(s); return }
  const d = s.durability
  printLines(
    `peer id:  ${s.id}`,
    `swarm:    ${s.swarm === 'private' ? 'private (swarm key)' : 'open (no swarm key: any Shoal node can connect)'}`,
    `writers:  ${s.writers} (shoal trust ls)`,
    ...refusalLines(s.id, s.ownWrites, 'writes:   '),
    `peers:    ${s.peers}${unreachableNote(s.unreachable ?? [])}`,
    ...forgottenLines(s.namespace?.forgotten ?? []),
    `disk:     ${formatDisk(s.disk)}`,
    d === undefined
      ? 'health:   not checked yet (the repair pass runs every durability.checkInterval; `shoal repair --wait` now)'
      : `health:   ${d.stripes} stripes of ${d.manifests} placed file${d.manifests === 1 ? '' : 's'} (coded, or copies for replicas:N) this node placed or holds shards of: ${formatSummary(d)}${d.uncoded > 0 ? `; ${d.uncoded} file${d.uncoded === 1 ? '' : 's'} not coded yet, waiting for live nodes` : ''}${lostBeforeCoding(d.uncodedLost ?? 0)} (checked ${Math.max(0, Math.round((Date.now() - d.at) / 1000))} s ago)`,
    ...(s.damage === undefined ? [] : [`damage:   ${damageLine(s.damage)}`]),
    ...(s.conflicts === undefined || s.conflicts === 0 ? [] : [`conflicts: ${s.conflicts} conflict cop${s.conflicts === 1 ? 'y' : 'ies'} in the namespace (\`shoal conflicts\` lists them)`]),
    ...(s.uncommitted === undefined || s.uncommitted.files === 0 ? [] : [`uncommitted: ${s.uncommitted.files} file${s.uncommitted.files === 1 ? '' : 's'} (${formatBytes(s.uncommitted.bytes)}) written through a mount and never committed, kept in ${s.uncommitted.dir}: \`shoal add\` them again, then delete them`]),
    `repo:     ${s.repo}`,
    `gateway:  ${s.gateway === null ? 'off (shoal config set gateway 127.0.0.1:PORT)' : `${s.gateway}/ipfs/`}`,
    ...s.addresses.map(a => `listening ${a}`)
  )
}

/** After the peer count: the known peers not reached, the longest gone named (a machine gone for good is kept until forgotten). */
function unreachableNote (peers: UnreachablePeer[]): string {
  if (peers.length === 0) return ''
  const oldest = peers.reduce((a, b) => (a.since ?? Infinity) <= (b.since ?? Infinity) ? a : b)
  const away = oldest.since === undefined ? '' : `, away ${formatSpan(Date.now() - oldest.since)}`
  return `; ${peers.length} known peer${peers.length === 1 ? '' : 's'} not reached, re-dialled (${oldest.id}${away}; \`shoal peers disconnect ID\` forgets one gone for good)`
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
  process.stderr.write(inviteReminder(info) + '\n')
}

/**
 * What the holder of `info`'s invite may do, true for each mode: in a
 * private swarm whose writers are every member, join, read and write; in
 * one that lists its writers, join and read, and write only once the
 * members trust it; in an open swarm, find this node, and write only once
 * trusted too.
 */
export function inviteReminder (info: Pick<InviteInfo, 'swarm' | 'writers'>): string {
  const trustStep = 'run `shoal trust add PEER` on each member for the new node\'s writes to be applied (PEER: the new node\'s id, `shoal id` there)'
  if (info.swarm === 'open') return `this swarm is open: the invite only says where this node is (\`shoal init --join INVITE\`); ${trustStep}`
  if (info.writers === 'listed') {
    return `keep this invite secret: it holds the swarm key, and whoever has it can join and read everything (\`shoal init --join INVITE\` on the new node); this swarm lists its writers (namespace.writers: listed), so the new node cannot write until the members trust it: ${trustStep}`
  }
  return 'keep this invite secret: it holds the swarm key, and whoever has it can join, read and write everything (`shoal init --join INVITE` on the new node; every member writes: namespace.writers: swarm)'
}

function formatTrust (t: TrustStatus): string[] {
  const who = t.everyone
    ? 'every member of this private swarm (namespace.writers: swarm)'
    : `this node and ${t.trusted.length} trusted peer${t.trusted.length === 1 ? '' : 's'}${t.swarm === 'open' ? ' (open swarm)' : ' (namespace.writers: listed)'}`
  return [`writers: ${who}`, `self:    ${t.self}`, ...t.trusted.map(p => `trusted: ${p}`), ...refusalLines(t.self, t.ownWrites, 'refused: ')]
}

/** The refusal line (trust-admin.ts `refusalLine`) after `prefix`, naming the members; none when no member refuses (or an older daemon). */
function refusalLines (self: string, ownWrites: TrustStatus['ownWrites'] | undefined, prefix: string): string[] {
  const line = ownWrites === undefined ? undefined : refusalLine({ self, ownWrites })
  return line === undefined ? [] : [`${prefix}${line}; refused by ${ownWrites?.refusedBy.join(', ') ?? ''}`]
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

/** The status line's note of files lost before their coding (their blocks neither here nor on a peer), or nothing. */
function lostBeforeCoding (files: number): string {
  if (files === 0) return ''
  return `; ${files} file${files === 1 ? '' : 's'} lost before ${files === 1 ? 'its' : 'their'} coding: ${files === 1 ? 'its' : 'their'} blocks are neither here nor on a peer (\`shoal pin status PATH\` says which)`
}
