import { readFile, rename, writeFile } from 'node:fs/promises'
import { z } from 'zod'

const KnownPeersSchema = z.object({
  peers: z.array(z.object({ id: z.string(), addrs: z.array(z.string()) }))
})

/** A peer we dial again after a restart. */
export interface KnownPeer { id: string, addrs: string[] }

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
