/**
 * `Files` over a real LevelDB block store and namespace in temp folders, with
 * a GC lock and a garbage collection over them; closed when the test ends.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { createNamespace, signerFromKey, MemoryKV, type Replica } from '../../../node/namespace/index.js'
import { Files } from '../../../node/files/index.js'
import { collectGarbage, GcLock, Holdings, type GcResult } from '../../../node/durability/index.js'
import { defer, openBlockStore, tempDir, type CleanupContext } from '../../helpers/temp.js'
import type { BlockStore } from '../../../node/blocks/index.js'

/** What {@link filesOnDisk} sets up. */
export interface FilesOnDisk {
  files: Files
  namespace: Replica
  blockstore: BlockStore
  /** A garbage collection of `blockstore` (no grace period). */
  gc: () => Promise<GcResult>
}

/** A `Files` on disk; with `gcLock` (the default) writes and `gc` share one lock; the block store in `blockstoreDir` if given. */
export async function filesOnDisk (t: CleanupContext, options: { gcLock?: boolean, blockstoreDir?: string } = {}): Promise<FilesOnDisk> {
  const logger = pino({ level: 'silent' })
  const blockstore = await openBlockStore(t, options.blockstoreDir)
  const namespace = createNamespace({ path: await tempDir(t), signer: signerFromKey(await generateKeyPair('Ed25519')), logger })
  await namespace.open()
  defer(t, async () => { await namespace.close() })
  const lock = new GcLock()
  const files = new Files({ blockstore, namespace, logger, gcLock: options.gcLock === false ? undefined : lock })
  const gc = async (): Promise<GcResult> => await collectGarbage({ blockstore, holdings: new Holdings(new MemoryKV()), files: () => namespace.files(), lock, logger }, 0)
  return { files, namespace, blockstore, gc }
}
