/**
 * `shoal pin add|rm|ls|status`, `shoal repair`, `shoal gc`.
 *
 * @module
 */
import { parsePolicy } from '../../protocol/durability.js'
import { ApiClient, type Query } from '../client.js'
import { failIfUnreadable } from '../data-unavailable.js'
import { formatBytes, formatSpan, formatSummary, notePending, printable, printJson, printLines, type GlobalOptions } from '../output.js'
import { shellQuote } from '../../node/shell-quote.js'
import { meter, PhaseMeters, progressMode } from '../progress.js'
import type { ProgressUpdate } from '../../node/api/progress.js'
import type { FileBlocks, PinInfo } from '../../node/files/index.js'
import type { LostBlock, PinStatus, RepairReport, ScrubReport, StripeStatus } from '../../node/durability/index.js'
import type { ColdCopyHealth } from '../../node/tiers/cold-health.js'
import type { GcResult } from '../../node/durability/gc.js'
import type { ReindexReport } from '../../node/blocks/index.js'
import type { TierConfig } from '../../node/tiers/config.js'
import type { TierStatus } from '../../node/tiers/service.js'
import type { TierProbeState } from '../../node/tiers/probe.js'

/** `shoal pin add PATH|CID [--policy P] [--tier hot|cold]` (and `shoal tier pull`). */
export async function pinAddCommand (g: GlobalOptions, target: string, opts: { policy?: string, tier?: string }): Promise<void> {
  if (opts.policy !== undefined) parsePolicy(opts.policy)
  const client = await ApiClient.connect(g.repo)
  const { pending, ...pin } = await client.json<PinInfo>('POST', '/api/v0/pin/add', { arg: target, policy: opts.policy, tier: opts.tier })
  if (g.json) printJson(pin)
  else printLines(`pinned ${pin.path} ${pin.policy}${pin.manifest !== undefined ? ` (manifest ${pin.manifest})` : ''}${pin.cold !== undefined ? `, cold copy ${pin.cold.endpoint}/${pin.cold.bucket}/${pin.cold.key}` : ''}`)
  if (pending !== undefined) notePending(g, pin.path, pending)
}

/** `shoal tier s3 --endpoint URL --bucket NAME [--prefix P] [--region R]`. */
export async function tierSetCommand (g: GlobalOptions, opts: { endpoint: string, bucket: string, prefix?: string, region?: string }): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const tier = await client.json<TierConfig>('POST', '/api/v0/tier/set', { endpoint: opts.endpoint, bucket: opts.bucket, prefix: opts.prefix, region: opts.region })
  if (g.json) printJson(tier)
  else printLines(`cold tier: ${tier.endpoint} bucket ${tier.bucket}${tier.prefix !== undefined && tier.prefix !== '' ? ` prefix ${tier.prefix}` : ''}`)
}

/** What `tier ls` says of a tier that is not usable, by the probe's state. */
const PROBE_WORDS: Record<TierProbeState, string> = {
  ok: 'reachable',
  unreachable: 'unreachable',
  refused: 'reachable, but it refused the credentials',
  missing: 'reachable, but the bucket is missing',
  failing: 'reachable, but failing'
}

/** `shoal tier ls`. */
export async function tierLsCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const status = await client.json<TierStatus>('GET', '/api/v0/tier/ls')
  if (g.json) { printJson(status); return }
  if (!status.configured || status.tier === undefined) { printLines('no cold tier (set one with `shoal tier s3 --endpoint URL --bucket NAME`)'); return }
  const p = status.probe
  const where = `${status.tier.endpoint} bucket ${status.tier.bucket}${status.tier.prefix !== undefined && status.tier.prefix !== '' ? ` prefix ${status.tier.prefix}` : ''}`
  if (p === undefined || p.state !== 'ok') { printLines(`${where}: ${PROBE_WORDS[p?.state ?? 'unreachable']}${p?.error !== undefined ? ` (${p.error.message})` : ''}`); return }
  printLines(`${where}: reachable (${p.latencyMs} ms), ${p.usage?.coldCopies ?? 0} cold copies, ${p.usage?.objects ?? 0} objects, ${formatBytes(p.usage?.bytes ?? 0)}${p.usage?.complete === false ? ' (at least)' : ''}`)
}

/** `shoal pin rm PATH|CID`. */
export async function pinRmCommand (g: GlobalOptions, target: string): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  await client.json('POST', '/api/v0/pin/rm', { arg: target })
  if (g.json) printJson({ unpinned: target })
  else printLines(`unpinned ${target}`)
}

/** `shoal pin ls`. */
export async function pinLsCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const pins = await client.json<PinInfo[]>('GET', '/api/v0/pin/ls')
  if (g.json) printJson(pins)
  else printLines(...pins.map(p => `${printable(p.path)}\t${p.policy}\t${p.cid}\t${formatBytes(p.size)}`))
}

/** `shoal pin status PATH|CID`: the file's state, its cold copy (read back whole with `--verify`), a summary, and one line per stripe that is not healthy (every one with `--all`). */
export async function pinStatusCommand (g: GlobalOptions, target: string, opts: { all?: boolean, verify?: boolean }): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const status = await client.json<PinStatus & { path: string, cold?: ColdCopyHealth, blocks?: FileBlocks }>('GET', '/api/v0/pin/status', { arg: target, ...(opts.verify === true ? { verify: 'true' } : {}) })
  if (g.json) printJson(status)
  else printLines(...pinStatusLines(status, opts))
  failIfUnreadable(`pin status ${printable(status.path)}`, { stripes: status.state === 'lost' ? status.summary.lost : 0, blocks: status.blocks?.heldByNone ?? 0 })
}

/** The text of `pin status`. */
function pinStatusLines (status: PinStatus & { path: string, cold?: ColdCopyHealth, blocks?: FileBlocks }, opts: { all?: boolean }): string[] {
  const lines = [`${printable(status.path)}\t${status.policy}\t${status.root}`, `state: ${status.state}`]
  if (status.cold !== undefined) lines.push(coldLine(status.cold))
  if (status.manifest !== undefined) {
    lines.push(`stripes: ${formatSummary(status.summary)} (k=${String(status.k)}, m=${String(status.m)}; peers answering: ${status.peersAsked.length})`)
    // why stripes are pending, once each (the same reason holds for most of a file's stripes)
    const whys = new Set(status.stripes.flatMap(s => s.waiting ?? []))
    if (status.placing !== undefined) lines.push(`placing: ${status.placing.pushed} of ${status.placing.total} shard blocks pushed to peers`)
    else if (status.pending === true && whys.size === 0) lines.push('placement: not final yet (under way, or waiting for enough live peers; the repair pass goes on with it)')
    for (const why of whys) lines.push(`pending: ${why}`)
    const copies = status.stripes.reduce((n, s) => n + (s.copiesHere ?? 0), 0)
    if (copies > 0) lines.push(`copies here: ${copies} shard${copies === 1 ? '' : 's'} lost on ${copies === 1 ? 'its holder is' : 'their holders are'} in this node's store (the same bytes added here, or left from before): the file reads here, and the repair pass keeps them as held shards and rebuilds the rest`)
    if (status.summary.atRisk > 0) lines.push(atRiskLine(status.k ?? 0, status.m ?? 0, status.peersAsked.length, shellQuote(printable(status.path))))
    const waitLine = degradedWaitLine(status.stripes, status.peersAsked.length)
    if (waitLine !== undefined) lines.push(waitLine)
    const back = status.stripes.filter(s => s.away !== undefined && s.live + s.away >= (status.k ?? 0)).length
    if (back > 0) lines.push(`away: ${back} lost stripe${back === 1 ? '' : 's'} would read again with holders that went down within the grace period (durability.grace): lost for now, not for good, if they come back`)
    for (const s of status.stripes) {
      if (s.state === 'healthy' && opts.all !== true) continue
      lines.push(stripeLine(s))
    }
  } else if (status.waiting !== undefined) {
    lines.push(`pending: not coded yet: ${status.waiting}`)
  } else {
    lines.push(status.cold === undefined ? 'not striped: kept where its blocks are' : 'not striped: kept in the cold tier, and where its blocks are')
  }
  if (status.blocks !== undefined) lines.push(...blocksLines(status.blocks))
  return lines
}

/**
 * The `at risk:` line of `pin status`: why, and, when the swarm has fewer
 * live nodes (`nodes`: the nodes that answered, this one among them) than the code has shards, what a
 * cluster that stays that small does instead — a user of a three-node
 * cluster on the default `ec:4+2` saw stripes at risk with nothing to act on.
 */
function atRiskLine (k: number, m: number, nodes: number, path: string): string {
  const line = `at risk: shards share nodes (fewer than ${k + m} distinct live nodes hold them); they are placed again when more peers are live`
  if (nodes >= k + m || nodes < 2) return line
  return `${line}; a cluster that stays at ${nodes} nodes carries a code of at most ${nodes} shards: \`shoal pin add ${path} --policy ec:${nodes - 1}+1\` (and durability.largePolicy for new files)`
}

/**
 * The `degraded:` line of `pin status`, when some degraded stripes have a
 * shard on every node that answered (`nodes`, this one among them): the
 * repair pass puts a second shard of a stripe on a node only where that
 * protects the stripe from the loss of a node (docs/durability.md), so
 * they may stay degraded until a node joins. Without it, a three-node swarm
 * showed such stripes `degraded` pass after pass, and `repair` read as
 * failing (an operator's test). Undefined when no stripe is so.
 */
export function degradedWaitLine (stripes: readonly StripeStatus[], nodes: number): string | undefined {
  const waiting = stripes.filter(s => s.health === 'degraded' && new Set(s.shards.flatMap(sh => sh.holders)).size >= nodes).length
  if (waiting === 0) return undefined
  return `degraded: ${waiting} stripe${waiting === 1 ? ' has' : 's have'} a shard on every node that answered (${nodes}): the repair pass puts a second shard on a node only where that protects the stripe from the loss of a node, so ${waiting === 1 ? 'it' : 'they'} may stay degraded until a node joins (or a holder that is away comes back)`
}

/** What this node (and its peers, asked about the first missing blocks) hold of a file that is not coded. */
export function blocksLines (b: FileBlocks): string[] {
  if (b.missing === 0 && b.complete) return [`blocks here: all ${b.checked} of the file's blocks`]
  if (b.missing === 0) return [`blocks here: the first ${b.checked} looked up are here (the walk stopped there)`]
  const of = b.complete ? `of ${b.checked}` : `of ${b.checked} looked up${b.unknownSubtrees > 0 ? `; ${b.unknownSubtrees} missing inner block${b.unknownSubtrees === 1 ? '' : 's'} hide${b.unknownSubtrees === 1 ? 's' : ''} more` : ''}`
  const lines = [`blocks here: ${b.missing} MISSING ${of} (reads of the file fetch them from peers, or fail)`]
  const asked = b.firstMissing.length
  if (b.peers === undefined || b.peers.length === 0) lines.push(`peers asked about the first ${asked} missing: none answered`)
  else lines.push(`peers asked about the first ${asked} missing: ${b.peers.map(p => `${p.peer} has ${p.have}`).join(', ')}`)
  if ((b.heldByNone ?? 0) > 0) lines.push(`held by no peer that answered: ${b.heldByNone ?? 0} of the ${asked} asked about: the file does not read now`)
  return lines
}

/** One line on a file's cold copy: where it is and whether it is intact. */
function coldLine (c: ColdCopyHealth): string {
  const where = `cold copy: ${c.endpoint}/${c.bucket}/${c.key}`
  if (c.state === 'ok') return `${where}: ok (${c.verified === true ? 'read back whole, every byte as written' : 'both objects there at the sizes written'})`
  return `${where}: ${c.state.toUpperCase()}: ${c.error?.message ?? ''}${c.error === undefined ? '' : ` (${c.error.name})`}`
}

/** `shoal repair [--wait] [--scrub]`. */
export async function repairCommand (g: GlobalOptions, opts: { wait?: boolean, scrub?: boolean, reindex?: boolean }): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const flags = { scrub: opts.scrub === true || undefined, reindex: opts.reindex === true || undefined }
  if (opts.wait !== true) {
    await client.json('POST', '/api/v0/repair', flags)
    if (g.json) printJson({ started: true })
    else printLines(`${opts.reindex === true ? 'reindex, ' : ''}${opts.scrub === true ? 'scrub and ' : ''}repair pass started`)
    return
  }
  const r = await withServerProgress<RepairReport & { scrub?: ScrubReport, reindex?: ReindexReport }>(g, client, '/api/v0/repair', { wait: true, ...flags })
  if (g.json) printJson(r)
  else printLines(...repairLines(r))
  // blocks of no file here (a pin not known here yet, a peer's reservation) are not counted: no file of this node is unreadable for them
  failIfUnreadable('the repair pass', { stripes: r.lost, uncodedFiles: r.uncodedLost ?? 0, blocks: r.scrub?.lost.filter(b => b.paths.length > 0).length ?? 0 })
}

/** The text of `repair --wait`. */
function repairLines (r: RepairReport & { scrub?: ScrubReport, reindex?: ReindexReport }): string[] {
  const lines: string[] = []
  if (r.reindex !== undefined) {
    const x = r.reindex
    lines.push(
      `reindex: ${x.packs} packs, ${x.records} intact records read, ${x.corruptRecords} corrupt; ${x.indexed} indexed again, ${x.repointed} repointed, ${x.removed} removed (no intact copy here)`,
      ...x.lost.map(cid => `lost here: ${cid}`)
    )
  }
  if (r.scrub !== undefined) {
    const s = r.scrub
    lines.push(
      `scrub: ${s.blocks} blocks (${formatBytes(s.bytes)}) re-hashed, ${s.corrupt} corrupt${s.missing > 0 ? ` and ${String(s.missing)} lost before, looked for again` : ''}: ${s.rebuilt} rebuilt from their stripes, ${s.refetched} fetched again, ${s.lost.length} lost${leftoversNote(s.leftovers)}${unknownNote(s.unknown)}`,
      ...s.lost.map(lostLine),
      ...s.errors.map(e => `scrub error: ${e}`)
    )
  }
  lines.push(
    `${r.manifests} pinned files, ${r.stripes} stripes: ${formatSummary(r)}; ${r.waiting} shards within the grace period (rebuilt after it: durability.grace)`,
    `repaired ${r.repaired} shards (${formatBytes(r.bytesIn)} in, ${formatBytes(r.bytesOut)} out); placements retried: ${r.placed}`,
    ...(r.unplaced > 0 ? [`${r.unplaced} lost shards cannot be rebuilt now: no live node can take them where they would add protection (one beside another shard of its stripe would be lost with it: with fewer live nodes than shards, a stripe that survives the loss of any one node already stays degraded), or too few shards of their stripe are left; a node that joins gets them (\`shoal pin status PATH\` names lost stripes)`] : []),
    ...(r.coded > 0 || r.uncoded > 0 ? [`files coded once enough nodes were live: ${r.coded}; still waiting for live nodes: ${r.uncoded}`] : []),
    ...((r.uncodedLost ?? 0) > 0 ? [`files lost before their coding: ${r.uncodedLost} (their blocks are neither here nor on a peer; each pass tries again, should a peer bring them back)`] : []),
    ...r.errors.map(e => `error: ${e}`)
  )
  return lines
}

/** One lost block of a scrub: its CID (as its file's DAG names it) and the files it belongs to. */
function lostLine (b: LostBlock): string {
  return `lost: ${b.cid}\t${b.paths.length > 0 ? b.paths.join(' ') : '(no file here: a shard of a pin not known here yet, or a block a peer reserved)'}`
}

/** The scrub line's note on corrupt leftovers, when there are some. */
function leftoversNote (leftovers: number | undefined): string {
  if (leftovers === undefined || leftovers === 0) return ''
  return `, ${leftovers} leftover${leftovers === 1 ? '' : 's'} no file here needs (of removed files: \`shoal gc\` drops them; not lost)`
}

/** The scrub line's note on corrupt blocks whose file cannot be told, when there are some. */
function unknownNote (unknown: number | undefined): string {
  if (unknown === undefined || unknown === 0) return ''
  return `, ${unknown} no file reaches (under a lost inner block, or leftovers of removed files: they cannot be told apart)`
}

/** The gc line's note on removed files past their grace period kept until every member has seen the removal, when there are some. */
function unsettledNote (r: Pick<GcResult, 'keptUnsettled' | 'waitingOn'>): string {
  if (r.keptUnsettled === 0) return ''
  const more = r.waitingOn.length > 3 ? ` and ${r.waitingOn.length - 3} more` : ''
  const who = r.waitingOn.length > 0 ? ` (waiting for ${r.waitingOn.slice(0, 3).join(', ')}${more}; a member whose node is gone for good: \`shoal peers forget PEER\`)` : ''
  return `, ${r.keptUnsettled} of them past it until every member of the namespace has seen the removal and sent its writes${who}`
}

/** `shoal gc`. */
export async function gcCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const r = await withServerProgress<GcResult>(g, client, '/api/v0/gc', {})
  if (g.json) printJson(r)
  else {
    const later = r.pendingBytes > 0 ? `; ${formatBytes(r.pendingBytes)} of removed blocks still on disk, in packs mostly live: given back once they are half dead` : ''
    const recovering = r.keptRecovering > 0 ? `; ${r.keptRecovering} more kept while the shards held here are looked up again (the holdings store is new)` : ''
    const unreadable = r.keptUnreadable > 0 ? `; ${r.keptUnreadable} more kept: a node of a file here cannot be read, and the blocks below it are not known (\`shoal repair --scrub\` fetches it again, or reports it lost)` : ''
    const n = r.keptUnreferenced
    const grace = r.keptUnreferenced > 0 ? `; kept the shards of ${n} coding${n === 1 ? '' : 's'} no file names any more (removed, replaced, unpinned or moved to the cold tier) for the grace period (${formatSpan(r.graceMs)} from the first gc that found ${n === 1 ? 'it' : 'them'} so; \`durability.grace\`)${unsettledNote(r)}: a later gc collects them` : ''
    printLines(`removed ${r.removed} blocks (${formatBytes(r.freedBytes)} given back${later}), kept ${r.marked} (+${r.keptNew} written meanwhile${recovering}${unreadable}); forgot ${r.forgotten} manifests${grace}`)
  }
}

/**
 * POST `path` and answer its result: with bars on, through the API's
 * progress stream, each part of the work on its own line; else as plain
 * JSON, exactly as without progress.
 */
async function withServerProgress<R> (g: GlobalOptions, client: ApiClient, path: string, query: Query): Promise<R> {
  if (progressMode(g) === undefined) return await client.json<R>('POST', path, query)
  const phases = new PhaseMeters()
  try {
    return await client.withProgress<ProgressUpdate, R>('POST', path, query, { onProgress: update => { showProgress(g, phases, update) } })
  } finally {
    phases.stop()
  }
}

/** Draw one progress update of a reindex, gc, scrub or repair pass. */
function showProgress (g: GlobalOptions, phases: PhaseMeters, u: ProgressUpdate): void {
  switch (u.phase) {
    case 'reindex':
      phases.show('reindex', () => meter(g, { label: 'reindex: reading every pack' }))
      return
    case 'gc':
      if (u.step === 'mark') phases.show('gc mark', () => meter(g, { label: 'gc: marking', unit: { bytes: false, noun: 'files' } })).update(u.files, { note: `${u.marked} blocks to keep` })
      else if (u.step === 'sweep') phases.show('gc sweep', () => meter(g, { label: 'gc: sweeping', unit: { bytes: false, noun: 'blocks' }, total: u.total })).update(u.checked, { total: u.total, note: `${u.removed} removed` })
      else phases.show('gc compact', () => meter(g, { label: 'gc: giving the space back (rewriting packs)' }))
      return
    case 'scrub':
      phases.show('scrub', () => meter(g, { label: 'scrub', unit: { bytes: true } })).update(u.bytes, { note: `${u.blocks} blocks, ${u.corrupt} corrupt` })
      return
    case 'repair':
      phases.show('repair', () => meter(g, { label: 'repair', unit: { bytes: false, noun: 'files' } })).update(u.manifests, { total: u.total, note: `${u.repaired} shards rebuilt` })
      return
    case 'car':
  }
}

/**
 * One stripe of `pin status`, tab-separated: `stripe N`, its state (with
 * `acked/total shards acked` while placing, when counted), its health with
 * live/all shards, each shard's holders, and why placement chose them.
 */
export function stripeLine (s: StripeStatus): string {
  const state = s.progress !== undefined ? `${s.state} ${s.progress.acked}/${s.progress.total} shards acked` : s.state
  const shards = s.shards.map(sh => `${sh.index}:${sh.cid === undefined ? 'zero' : sh.copyHere === true ? 'copy-here' : sh.holders.length === 0 ? 'MISSING' : sh.holders.map(short).join('+')}`)
  const away = s.away === undefined ? '' : `\t(${s.away} of its missing shards on holders down within the grace period)`
  return `stripe ${s.index}\t${state}\t${s.health} ${s.live}/${s.shards.length}\t${shards.join(' ')}${away}${s.why !== undefined ? `\t(${s.why})` : ''}`
}

function short (peer: string): string {
  return peer.length > 12 ? `…${peer.slice(-8)}` : peer
}
