/**
 * Files ⇄ UnixFS DAGs: chunking, import, ranged export, directory DAGs.
 *
 * @module
 */
export { importContent, KUBO_MAX_CHILDREN, type ImportContentOptions, type ImportedContent, type ImportProgressEvents, type LeafSink } from './import.js'
export { readContent, resolveEntry, entrySize, notFileOrDirectory, type ReadContentOptions } from './export.js'
export { FileLayout } from './file-layout.js'
export type { LeafSpan } from './ranged-reader.js'
export type { BlockGetter } from '../reads/api.js'
export { DirectoryDags, MAX_DIRECTORY_BLOCK, type DirectoryDagsComponents, type NamespaceChanges } from './directory.js'
export { shardedDirectory, SHARD_FANOUT_BITS, type DirectoryLink, type StoredNode } from './hamt-directory.js'
export { parseChunker, formatChunker, createChunker, type ChunkerSpec } from './chunker/index.js'
export { localPresence, type BlockPresence, type PresenceOptions } from './presence.js'
