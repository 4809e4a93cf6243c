/**
 * The `damage:` line of `shoal status`: the files this node knows miss
 * blocks here, from what already looked (the last scrub, reads that failed,
 * `pin status`), and blocks the store's open found gone. One line; nothing
 * is walked for it (node/api/damage-status.ts).
 *
 * @module
 */
import type { DamageStatus } from '../node/api/damage-status.js'

/** Files named on the line; the rest are counted. */
const NAMED = 4

/** The line after `damage:   `, at `now` (ms). */
export function damageLine (d: DamageStatus, now = Date.now()): string {
  const found = new Map<string, string>()
  for (const n of d.files) found.set(n.path, `${n.by === 'read' ? 'a read failed' : 'pin status'} ${ago(n.at, now)}`)
  const noted = found.size
  const scrub = d.scrub
  if (scrub !== undefined) for (const { path } of scrub.files) if (!found.has(path)) found.set(path, `lost in the scrub ${ago(scrub.at, now)}`)
  const count = found.size + (scrub?.moreFiles ?? 0)
  const parts: string[] = []
  if (count > 0) {
    const named = [...found].slice(0, NAMED).map(([path, by]) => `${path} (${by})`)
    const more = count - named.length
    // what clears each: a read's or pin status's note, the next pin status that finds the file whole; the scrub's, the next scrub
    const again = [
      ...(noted > 0 ? ['`shoal pin status PATH` checks one again'] : []),
      ...(count > noted ? [`the scrub's stay until the next \`shoal repair --scrub --wait\``] : [])
    ]
    parts.push(`${count} file${count === 1 ? '' : 's'} found missing blocks here: ${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}; ${again.join('; ')}`)
  }
  if (scrub !== undefined && scrub.unowned > 0) {
    parts.push(`the scrub ${ago(scrub.at, now)} lost ${scrub.unowned} block${scrub.unowned === 1 ? '' : 's'} of no file here (shards of pins not known here yet, or reserved by a peer)`)
  }
  if (d.goneAtStart !== undefined) {
    parts.push(`${d.goneAtStart} block${d.goneAtStart === 1 ? '' : 's'} gone at start (in missing or short packs): \`shoal repair --scrub --wait\` names their files`)
  }
  if (parts.length > 0) return parts.join('; ')
  return `none known (${scrub === undefined ? 'no scrub yet' : `last scrub ${ago(scrub.at, now)}`}; reads and \`pin status\` note what they find missing)`
}

/** `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`. */
function ago (at: number, now: number): string {
  const s = Math.max(0, Math.round((now - at) / 1000))
  if (s < 120) return `${s} s ago`
  if (s < 2 * 3600) return `${Math.round(s / 60)} min ago`
  if (s < 2 * 86400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86400)} d ago`
}
