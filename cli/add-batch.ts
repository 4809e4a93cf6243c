/**
 * The small files of a directory `add`, sent many per request
 * (`POST /api/v0/add-many`, protocol/add-batch.ts): one import pass, one
 * fsync and one namespace entry per batch instead of per file. A file
 * larger than {@link BATCH_FILE_BYTES} goes alone, as before, and so does
 * every file of an `add --wait` (each waits for its own placement).
 *
 * @module
 */
import type { Stats } from 'node:fs'
import { encodeBatchHead, BATCH_CONTENT_TYPE, MAX_MANIFEST_BYTES, type BatchFile } from '../protocol/add-batch.js'
import type { ApiClient } from './client.js'
import { commandStarted } from './started.js'
import { batchBody } from './local-file.js'
import type { GlobalOptions } from './output.js'
import { meter } from './progress.js'
import type { FileInfo } from '../node/files/index.js'

/** Largest file sent in a batch. */
export const BATCH_FILE_BYTES = 1024 * 1024

/** Most files in one batch. */
export const BATCH_FILES = 1024

/** Most bytes of content in one batch. */
export const BATCH_BYTES = 64 * 1024 * 1024

/** A local file of a directory add and the namespace path it goes to. */
export interface LocalUpload {
  local: string
  remote: string
  /** Its lstat, taken when the walk met it. */
  st: Stats
}

/** The files of a batch being gathered, and what they add up to. */
export class PendingBatch {
  readonly files: LocalUpload[] = []
  private bytes = 0
  private manifestBytes = 2

  /**
   * Add `next` when it fits — within {@link BATCH_FILES}, {@link BATCH_BYTES}
   * and the daemon's manifest size (deep paths of 4 KiB each pass it well
   * before 1,024 files) — or when the batch is empty; false, and the batch
   * unchanged, when it does not.
   */
  add (next: LocalUpload): boolean {
    const entry = entryBytes(next)
    const fits = this.files.length < BATCH_FILES && this.bytes + next.st.size <= BATCH_BYTES && this.manifestBytes + entry <= MAX_MANIFEST_BYTES
    if (!fits && this.files.length > 0) return false
    this.files.push(next)
    this.bytes += next.st.size
    this.manifestBytes += entry
    return true
  }

  /** The files gathered, leaving the batch empty. */
  take (): LocalUpload[] {
    this.bytes = 0
    this.manifestBytes = 2
    return this.files.splice(0)
  }
}

/** What `file` adds to a manifest, its separator included. */
function entryBytes (file: LocalUpload): number {
  return Buffer.byteLength(JSON.stringify(manifestEntry(file))) + 1
}

function manifestEntry (f: LocalUpload): BatchFile {
  return { to: f.remote, size: f.st.size, mode: f.st.mode & 0o7777, mtime: Math.floor(f.st.mtimeMs) }
}

/**
 * Upload `files` in one request; their infos in the same order. The daemon
 * binds them all or none (a file that changed while it was read fails the
 * whole batch).
 */
export async function uploadBatch (g: GlobalOptions, client: ApiClient, files: readonly LocalUpload[], flags: { chunker?: string, pin?: string }): Promise<FileInfo[]> {
  const manifest: BatchFile[] = files.map(manifestEntry)
  const head = encodeBatchHead(manifest)
  const content = manifest.reduce((n, f) => n + f.size, 0)
  const progress = meter(g, { label: `add ${files.length} files`, unit: { bytes: true }, total: head.byteLength + content })
  try {
    const stream = batchBody(head, files.map(f => ({ file: f.local, size: f.st.size, mtimeMs: f.st.mtimeMs })), { onBytes: n => { progress.add(n) } })
    return await client.json<FileInfo[]>('POST', '/api/v0/add-many', { chunker: flags.chunker, pin: flags.pin, started: commandStarted() }, { stream, length: head.byteLength + content, type: BATCH_CONTENT_TYPE })
  } finally {
    progress.stop()
  }
}
