import { readFile, rename, writeFile } from 'node:fs/promises'
import { z } from 'zod'

const KnownPeersSchema = z.object({
  peers: z.array(z.object({
    id: z.string(),
    addrs: z.array(z.string()),
    kept: z.boolean().optional(),
    seen: z.number().finite().nonnegative().optional()
  }))
})

/** A peer we dial again after a restart. */
export interface KnownPeer {
  id: string
  addrs: string[]
  /**
   * Kept until `shoal peers disconnect`: a peer the user connected to
   * (`shoal peers connect`); without it, a peer this node met (dialled for
   * the DHT, a sync, a read), forgotten after a long time unreachable.
   */
  kept?: boolean
  /** When this node was last connected to it (ms since the epoch); absent in files written before it was kept. */
  seen?: number
}

/**
 * Peers worth re-dialling, kept in `<repo>/peers.json`. A missing or
 * unreadable file is an empty list (it is a cache, not a source of truth).
 */
export async function loadKnownPeers (file: string): Promise<KnownPeer[]> {
  try {
    const parsed = KnownPeersSchema.safeParse(JSON.parse(await readFile(file, 'utf8')))
    return parsed.success ? parsed.data.peers : []
  } catch {
    return []
  }
}

/** Write the known peers atomically. */
export async function saveKnownPeers (file: string, peers: KnownPeer[]): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify({ peers }, null, 2) + '\n')
  await rename(tmp, file)
}
