import { fstatSync, type Stats } from 'node:fs'
import { lstat, mkdir, opendir, rm } from 'node:fs/promises'
import { basename, join, posix, relative, sep } from 'node:path'
import { DaemonNotRunningError, InvalidArgumentError, InvalidPathError, NotFoundError } from '../../node/errors.js'
import { parsePolicy } from '../../protocol/durability.js'
import { OUTPUT_HEADER } from '../../protocol/cat-output.js'
import { ApiClient, ApiError, BrokenStreamError, type Query } from '../client.js'
import { createHeld, downloadError, moveIntoPlace, openDownloadTarget, release, stagingPath } from '../staging.js'
import { checkOutputPath, checkPlanOnDisk, fileOutputPath, outputPath, planTree, type ListedEntry, type TreePlan } from '../output-path.js'
import { formatBytes, formatTime, notePending, printable, printJson, printLines, type GlobalOptions } from '../output.js'
import { commandStarted } from '../started.js'
import { byteCounter, meter } from '../progress.js'
import { mapAtOnce } from '../../node/at-once.js'
import { applyAttrs, recordedAttrs, setAttrs, type RecordedAttrs } from '../tree-attrs.js'
import { BATCH_FILE_BYTES, PendingBatch, uploadBatch, type LocalUpload } from '../add-batch.js'
import { AddInterrupt } from '../add-interrupt.js'
import { fileBody, LocalReadError } from '../local-file.js'
import type { FileInfo } from '../../node/files/index.js'
import { refusalLine } from '../../node/peers/refusal-line.js'
import type { TrustStatus } from '../../node/peers/trust-admin.js'
import type { ConflictInfo } from '../../node/namespace/index.js'


function joinNs (dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir.replace(/\/$/, '')}/${name}`
}

/**
 * A request that names this command's start (`started`: what arrived from
 * another node after it, the user never saw); a daemon older than that
 * parameter is asked again without it.
 */
async function withStart<T> (client: ApiClient, method: 'GET' | 'POST', route: string, query: Query): Promise<T> {
  try {
    return await client.json<T>(method, route, { ...query, started: commandStarted() })
  } catch (err) {
    if (!refusesParameter(err, 'started')) throw err
    return await client.json<T>(method, route, query)
  }
}

/**
 * The entry at `path`, or undefined. With `seen`, an entry that arrived
 * from another node after this command began says so (`arrivedAfterStart`).
 */
async function statOrUndefined (client: ApiClient, path: string, options: { seen?: boolean } = {}): Promise<FileInfo | undefined> {
  try {
    return options.seen === true
      ? await withStart<FileInfo>(client, 'GET', '/api/v0/stat', { arg: path })
      : await client.json<FileInfo>('GET', '/api/v0/stat', { arg: path })
  } catch (err: any) {
    if (err instanceof ApiError && err.name === 'NotFoundError') return undefined
    throw err
  }
}

/**
 * Where `add SOURCE --to TO` puts SOURCE: inside TO, under its own name,
 * when TO ends with `/` or shows a folder this command saw; else at TO. A
 * folder that arrived from another node after the command began (`found`
 * says so) is one it never saw, and the add counts as written at once with
 * it: a folder added there joins it instead of going inside (two `add DIR
 * --to /d` of a new `/d` started together on two nodes nested one in the
 * other: the later one found the other's `/d`), and a file is kept beside
 * it, its conflict copy (the daemon's add does that), as when the two are
 * written at once.
 */
export function addTarget (source: { name: string }, to: string | undefined, found: Pick<FileInfo, 'type' | 'arrivedAfterStart'> | undefined): string {
  if (to === undefined) return `/${source.name}`
  const into = to.endsWith('/') || (found?.type === 'dir' && found.arrivedAfterStart !== true)
  return into ? joinNs(to, source.name) : to
}

/** What `add` was asked for, the same for every file it uploads. */
interface AddFlags { to?: string, chunker?: string, pin?: string, wait?: boolean }

/** Upload one local file (`st` is its lstat) to the namespace path `to`. */
async function uploadFile (g: GlobalOptions, client: ApiClient, upload: { file: string, to: string, st: Stats, flags: AddFlags }): Promise<FileInfo> {
  const { file, to, st, flags } = upload
  const progress = meter(g, { label: `add ${basename(file)}`, unit: { bytes: true }, total: st.size })
  try {
    const body = fileBody(file, { size: st.size, mtimeMs: st.mtimeMs, onBytes: n => { progress.add(n) } })
    const query = { to, chunker: flags.chunker, mode: (st.mode & 0o7777).toString(8), mtime: Math.floor(st.mtimeMs), pin: flags.pin, wait: flags.wait === true ? true : undefined, started: commandStarted() }
    return await client.json<FileInfo>('POST', '/api/v0/add', query, { stream: body, length: st.size })
  } finally {
    progress.stop()
  }
}

/**
 * The lstat of a local file met during a directory add; a file gone since
 * the walk listed it is a {@link LocalReadError}. So is a name that is not
 * valid UTF-8: Node lists it with U+FFFD in place of the bytes it cannot
 * decode, a name no file has (it was reported as removed during the add).
 */
async function lstatLocal (file: string): Promise<Stats> {
  return await lstat(file).catch((err: any) => {
    const gone = basename(file).includes('\uFFFD')
      ? 'its name is not valid UTF-8 (names in the namespace are UTF-8): rename it, or leave it out of the folder added'
      : 'it was removed while the directory was added'
    throw new LocalReadError(`cannot read ${file}: ${err.code === 'ENOENT' ? gone : String(err.code ?? err.message)}`, { cause: err })
  })
}

/**
 * What one directory `add` made in the namespace, to undo it when the add
 * fails midway (a local file removed or changed during the walk, the daemon
 * refusing a file): the files and directories it created, newest first,
 * a directory only once empty (what another write put in it stays). A file the add
 * replaced keeps its new version (the namespace's history has the old one).
 */
class AddedPaths {
  /** Files created (none was at their path before). */
  private readonly files: string[] = []
  /** Directories created, in the order made. */
  private readonly dirs: string[] = []
  /** New files whose upload was cut without the daemon's answer: added or not, unknown (never removed by the undo). */
  private readonly perhaps: string[] = []

  constructor (private readonly client: ApiClient, private readonly target: string, private readonly targetIsNew: boolean) {}

  /** True when nothing is at `path` yet (everything under a target this add created is new: not asked). */
  private async isNew (path: string): Promise<boolean> {
    if (path === this.target || this.targetIsNew) return this.targetIsNew
    return await statOrUndefined(this.client, path) === undefined
  }

  /** Add the file `path` with `upload`, remembered when it is new. */
  async file<T> (path: string, upload: () => Promise<T>): Promise<T> {
    return await this.batch([path], upload)
  }

  /**
   * Add the files `paths` with `upload` (one batch: all or none), remembering
   * the new ones; those of an upload whose connection broke (a daemon that
   * stopped may have committed it as it went) are remembered as perhaps added.
   */
  async batch<T> (paths: readonly string[], upload: () => Promise<T>): Promise<T> {
    const fresh: string[] = []
    for (const path of paths) if (await this.isNew(path)) fresh.push(path)
    let result: T
    try {
      result = await upload()
    } catch (err) {
      // the daemon's answer (a refusal) or the local file's error added nothing; a connection broken once the body
      // was out may have come after the commit (a daemon that stops ends the request under way)
      if (connectionLost(err)) this.perhaps.push(...fresh)
      throw err
    }
    this.files.push(...fresh)
    return result
  }

  /**
   * Make the directory `path` (and its parents) with permission bits `mode`
   * when it is new, remembered then. A file there that arrived from another
   * node after this command began is kept beside it, its conflict copy (the
   * directory wins, as when the two are written at once).
   */
  async mkdir (path: string, mode?: number): Promise<void> {
    const fresh = await this.isNew(path)
    // the target's missing parents are made too (or beside a file that arrived after this command began): the undo's as well
    const above = path === this.target && fresh ? await this.missingAbove(path) : []
    try {
      await withStart(this.client, 'POST', '/api/v0/mkdir', { arg: path, parents: true, mode: mode?.toString(8) })
    } catch (err) {
      if (fresh && connectionLost(err)) this.perhaps.push(...above, path)
      throw err
    }
    if (fresh) this.dirs.push(...above, path)
  }

  /** The folders above `path` that are not there now (nothing, or a file at their path), top first. */
  private async missingAbove (path: string): Promise<string[]> {
    const missing: string[] = []
    for (let dir = posix.dirname(path); dir !== '/'; dir = posix.dirname(dir)) {
      const info = await statOrUndefined(this.client, dir).catch((err: unknown) => {
        if (err instanceof ApiError && err.name === 'NotADirectoryError') return undefined
        throw err
      })
      if (info?.type === 'dir') break
      missing.unshift(dir)
    }
    return missing
  }

  /** Remove what was made; returns `err` with a note of what was undone (or of what could not be). */
  async undo (err: unknown): Promise<unknown> {
    // only what this add made, newest first, and a folder only once empty: one of the same name that another node made
    // at the same moment merged with it, and what that node put there is not this add's to remove (a recursive
    // removal of the whole target removed it, and the removal reached every node)
    const files = [...this.files].reverse()
    const dirs = [...this.dirs].reverse()
    const left: string[] = []
    const kept: string[] = []
    for (const path of files) {
      await withStart(this.client, 'POST', '/api/v0/rm', { arg: path }).catch(() => { left.push(path) })
    }
    for (const path of dirs) {
      await withStart(this.client, 'POST', '/api/v0/rm', { arg: path }).catch((e: unknown) => { (e instanceof ApiError && e.name === 'DirectoryNotEmptyError' ? kept : left).push(path) })
    }
    const removed = files.length + dirs.length - left.length - kept.length
    if (err instanceof Error && removed + left.length + kept.length > 0) {
      const keptNote = kept.length === 0 ? '' : `; kept ${listed(kept)}: ${kept.length === 1 ? 'it holds' : 'they hold'} what another write put there`
      err.message += left.length > 0
        ? `; undoing the add failed for ${listed(left)}`
        : this.targetIsNew && this.dirs.includes(this.target) && kept.length === 0
          ? `; the add was undone (${this.target} removed${madeAbove(this.dirs, this.target)})`
          : `; the add was undone (${removed} new ${removed === 1 ? 'entry' : 'entries'} under ${this.target} removed${keptNote})`
    }
    // not removed: whose it is now cannot be told (another node may have written that path since)
    if (err instanceof Error && this.perhaps.length > 0) err.message += `; ${listed(this.perhaps)} ${this.perhaps.length === 1 ? 'was' : 'were'} being added as the connection broke and may be there`
    return err
  }
}

/** The folders above `target` that an add made (those before it in `dirs`), as a note. */
function madeAbove (dirs: readonly string[], target: string): string {
  const above = dirs.slice(0, dirs.indexOf(target))
  return above.length === 0 ? '' : `, and ${listed(above)} above it`
}

/**
 * True for an error of a request whose connection to the daemon broke (a
 * daemon that stopped, or went away): it may have done the request first.
 */
function connectionLost (err: unknown): boolean {
  return err instanceof BrokenStreamError || err instanceof DaemonNotRunningError ||
    (err as { code?: unknown } | undefined)?.code === 'ECONNRESET' || (err as Error | undefined)?.message === 'aborted'
}

/** Paths named in an error line: the first {@link LISTED_PATHS}, then how many more (a tree's add names no thousand paths in its one line). */
function listed (paths: readonly string[]): string {
  if (paths.length <= LISTED_PATHS) return paths.join(', ')
  return `${paths.slice(0, LISTED_PATHS).join(', ')} and ${paths.length - LISTED_PATHS} more`
}

/** Paths an error line names before it counts the rest. */
const LISTED_PATHS = 5

/** `shoal add FILE|DIR [--to PATH] [--chunker SPEC]`. */
export async function addCommand (g: GlobalOptions, source: string, opts: AddFlags): Promise<void> {
  if (opts.pin !== undefined) parsePolicy(opts.pin)
  const st = await lstat(source).catch((err: any) => {
    // Node decodes the command line as UTF-8: a name that is not reads with U+FFFD and names no file
    const why = err.code !== 'ENOENT'
      ? String(err.code ?? err.message)
      : source.includes('\uFFFD')
        ? 'no such file or directory (a name in it is not valid UTF-8, which neither the command line nor the namespace carries: rename it)'
        : 'no such file or directory'
    throw new NotFoundError(`cannot add ${source}: ${why}`)
  })
  if (!st.isFile() && !st.isDirectory()) throw new InvalidArgumentError(`cannot add ${source}: not a regular file or directory`)
  if (opts.to !== undefined && !opts.to.startsWith('/')) throw new InvalidPathError(`--to takes an absolute path in the namespace (starting with /), not ${JSON.stringify(opts.to)}`)
  const client = await ApiClient.connect(g.repo)
  const found = opts.to === undefined || opts.to.endsWith('/') ? undefined : await statOrUndefined(client, opts.to, { seen: true })
  const target = addTarget({ name: basename(source) }, opts.to, found)
  if (st.isFile()) {
    const info = await uploadFile(g, client, { file: source, to: target, st, flags: opts })
    if (g.json) printJson({ cid: info.cid, path: info.path, size: info.size })
    else printLines(`added ${info.cid} ${printable(info.path ?? '')}`)
    if (info.pending !== undefined) notePending(g, info.path ?? target, info.pending, 1)
    await warnIfRefused(client)
    return
  }
  // a directory: walk it, create directories first, upload files one by one;
  // a failure midway undoes what this add made, so no half-added tree stays
  let total = 0
  /** Files whose policy waits for live nodes, and the first one's reason. */
  const pending = { files: 0, why: '' }
  // new: no folder there (a file another node wrote since the command began is kept beside the folder this add makes)
  const made = new AddedPaths(client, target, (await statOrUndefined(client, target))?.type !== 'dir')
  const added = (info: FileInfo): void => {
    total += info.size
    if (info.pending !== undefined && pending.files++ === 0) pending.why = info.pending
    if (!g.json) printLines(`added ${info.cid} ${printable(info.path ?? '')}`)
  }
  // small files go many per request (cli/add-batch.ts); --wait keeps one request per file
  const batch = new PendingBatch()
  // a signal undoes the add too, once the request under way has ended (cli/add-interrupt.ts)
  const interrupt = new AddInterrupt({ json: g.json })
  const sendBatch = async (): Promise<void> => {
    if (batch.files.length === 0) return
    interrupt.check()
    const files = batch.take()
    for (const info of await made.batch(files.map(f => f.remote), async () => await uploadBatch(g, client, files, opts))) added(info)
  }
  try {
    await made.mkdir(target, st.mode & 0o7777)
    const dirs = [source]
    while (dirs.length > 0) {
      const dir = dirs.shift() as string
      const entries = []
      for await (const e of await opendir(dir)) entries.push(e)
      entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
      for (const e of entries) {
        const local = join(dir, e.name)
        const remote = joinNs(target, relative(source, local).split(sep).join('/'))
        if (e.isDirectory()) {
          interrupt.check()
          await made.mkdir(remote, (await lstatLocal(local)).mode & 0o7777)
          dirs.push(local)
        } else if (e.isFile()) {
          const file: LocalUpload = { local, remote, st: await lstatLocal(local) }
          if (opts.wait !== true && file.st.size <= BATCH_FILE_BYTES) {
            if (!batch.add(file)) {
              await sendBatch()
              batch.add(file)
            }
            continue
          }
          await sendBatch()
          interrupt.check()
          added(await made.file(remote, async () => await uploadFile(g, client, { file: local, to: remote, st: file.st, flags: opts })))
        } else {
          process.stderr.write(printable(`skipped ${local}: not a regular file or directory`) + '\n')
        }
      }
    }
    await sendBatch()
    // a signal during the last request: undone too, as the line on stderr said
    interrupt.check()
  } catch (err) {
    throw await made.undo(err)
  } finally {
    interrupt.stop()
  }
  const dirInfo = await client.json<FileInfo>('GET', '/api/v0/stat', { arg: target })
  if (g.json) printJson({ cid: dirInfo.cid, path: dirInfo.path, size: total })
  else printLines(`added ${dirInfo.cid} ${printable(dirInfo.path ?? '')}`)
  if (pending.files > 0) notePending(g, dirInfo.path ?? target, pending.why, pending.files)
  await warnIfRefused(client)
}

/**
 * After a write: a warning on stderr when every member this node is
 * connected to said it refuses this node's writes (writer notices,
 * node/namespace/write-refusals.ts): the write succeeded here and goes
 * nowhere else. Nothing when the daemon cannot tell (an older one).
 */
async function warnIfRefused (client: ApiClient): Promise<void> {
  let t: TrustStatus
  try {
    t = await client.json<TrustStatus>('GET', '/api/v0/trust/ls')
  } catch {
    return
  }
  if (t.ownWrites === undefined || t.ownWrites.members === 0 || t.ownWrites.refusedBy.length < t.ownWrites.members) return
  const line = refusalLine(t)
  if (line !== undefined) process.stderr.write(`warning: written on this node only: ${line}\n`)
}

/** `shoal cat PATH|CID [--offset N] [--length N]`. */
export async function catCommand (g: GlobalOptions, arg: string, opts: { offset?: number, length?: number }): Promise<void> {
  const { offset, length } = opts
  const client = await ApiClient.connect(g.repo)
  // a pipe on stdout is offered to the daemon to write itself (node/api/caller-pipe.ts);
  // it answers with the content instead when it cannot prove the pipe is this process's
  const pipe = stdoutPipe()
  const plain = { arg, offset, length }
  const target = { fd: 1, stream: () => process.stdout }
  const divert = (headers: Map<string, string>): boolean => headers.get(OUTPUT_HEADER) === 'pipe'
  try {
    try {
      await client.download('/api/v0/cat', pipe === undefined ? plain : { ...plain, 'pipe-pid': process.pid, 'pipe-ino': pipe }, target, { divert })
    } catch (err) {
      // a daemon older than the offer refuses its parameters before it reads anything: ask it as before
      if (pipe === undefined || !refusesPipeClaim(err)) throw err
      await client.download('/api/v0/cat', plain, target)
    }
  } catch (err: any) {
    if (err?.code === 'EPIPE') return // reader went away (`| head`): not an error
    throw err
  }
}

/**
 * Whether `err` is a daemon's refusal of the `pipe-pid`/`pipe-ino` query
 * parameters as unknown: a daemon that predates them (its query schema
 * takes no other key).
 */
function refusesPipeClaim (err: unknown): boolean {
  return refusesParameter(err, 'pipe-pid')
}

/** Whether `err` is a daemon's refusal of the query parameter `name` it does not know (a daemon older than the CLI). */
function refusesParameter (err: unknown, name: string): boolean {
  return err instanceof ApiError && err.status === 400 && err.name === 'InvalidArgumentError' && /unrecognized key/i.test(err.message) && err.message.includes(name)
}

/** The inode of stdout when it is a pipe or a FIFO, on Linux; else undefined. */
function stdoutPipe (): string | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    const stat = fstatSync(1, { bigint: true })
    return stat.isFIFO() ? String(stat.ino) : undefined
  } catch {
    return undefined
  }
}

/** Options of {@link download}. */
interface DownloadOptions {
  /** Told of every chunk written. */
  onBytes: (n: number) => void
  /** How `out` is named in errors (a file of a tree is written under a staging directory). @default out */
  shownAs?: string
}

/**
 * Download `arg` into the file `out` through a staging file beside it
 * (cli/staging.ts: created exclusively, removed on failure or interruption,
 * kept when only the rename fails), or into `out` itself when it is a
 * device or a FIFO.
 */
async function download (client: ApiClient, arg: string, out: string, options: DownloadOptions): Promise<void> {
  const shownAs = options.shownAs ?? out
  const target = await openDownloadTarget(out).catch(err => { throw downloadError(shownAs, err) })
  try {
    const res = await client.send('GET', '/api/v0/cat', { arg })
    await client.receive(res, byteCounter(options.onBytes), target.handle.createWriteStream())
  } catch (err) {
    await target.abort()
    throw downloadError(shownAs, err)
  }
  await target.finish()
}

/**
 * Files of a tree downloaded at once. A tree of small files is bound by each
 * request's round trip (a remote file waits on the swarm for its blocks),
 * not by bandwidth: one at a time, 3,600 files fetched from another node
 * waited ~10 ms each.
 */
const GET_CONCURRENCY = 8

/**
 * Write a checked tree plan under `out`. A new `out` is written beside it
 * and renamed into place at the end, so a download that fails midway (a
 * block nobody has, the daemon gone) leaves nothing; into an existing
 * directory, each file is written whole and renamed into place. A
 * complete download that cannot be renamed into place is kept, named in the
 * error (cli/staging.ts).
 */
async function writeTree (g: GlobalOptions, client: ApiClient, plan: TreePlan, out: string, existed: ReadonlySet<string>, attrs?: ReadonlyMap<string, RecordedAttrs>): Promise<void> {
  // the folders already there (checkPlanOnDisk), `''` among them when `out` is
  const fresh = !existed.has('')
  const base = fresh ? stagingPath(out) : out
  const progress = meter(g, { label: `get ${basename(out)}`, unit: { bytes: true }, total: plan.bytes })
  let bytes = 0
  // what this run made at the staging name, the only thing a failure removes (a name taken already is not ours)
  let staged = false
  try {
    if (fresh) {
      await createHeld(base, async () => { await mkdir(base) })
      staged = true
    }
    // each after its parent, one level at a time: Node's recursive mkdir loops forever where a
    // file system makes no folders (`-o /proc`); one already there is a folder (checkPlanOnDisk)
    // and keeps its own mode and times
    for (const dir of plan.dirs) {
      await mkdir(join(base, dir)).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'EEXIST') throw err })
    }
    let files = 0
    await mapAtOnce(plan.files, GET_CONCURRENCY, async file => {
      await download(client, file.cid, join(base, file.path), { shownAs: join(out, file.path), onBytes: n => { bytes += n; progress.update(bytes) } })
      progress.update(bytes, { note: `${++files}/${plan.files.length} files` })
    })
  } catch (err) {
    progress.stop()
    if (staged) {
      await rm(base, { recursive: true, force: true })
      release(base)
    }
    throw err
  }
  progress.stop()
  if (attrs !== undefined) warnAttrs(await applyAttrs(base, plan, attrs, existed))
  if (fresh) await moveIntoPlace(base, out)
}

/** One line on stderr when recorded modes or times could not be given (the download stands). */
function warnAttrs (failed: string | undefined): void {
  if (failed !== undefined) process.stderr.write(printable(`warning: the recorded permissions and times were not all set (${failed})`) + '\n')
}

/**
 * `shoal get PATH|CID -o OUT`: a file, or a directory tree. A tree is
 * planned whole and every name checked before anything is written
 * (cli/output-path.ts).
 */
export async function getCommand (g: GlobalOptions, arg: string, opts: { output: string }): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const root = await client.json<FileInfo>('GET', '/api/v0/stat', { arg })
  // a file into a directory (`-o dir/`, or `-o dir` that exists) is written there under its name, as cp does
  const out = root.type === 'file' ? await fileOutputPath(opts.output, root.name) : outputPath(opts.output, root.type)
  await checkOutputPath(out, root.type)
  let files = 0
  let bytes = 0
  if (root.type === 'file') {
    const progress = meter(g, { label: `get ${basename(out)}`, unit: { bytes: true }, total: root.size })
    try {
      await download(client, arg, out, { onBytes: n => { progress.add(n) } })
    } finally {
      progress.stop()
    }
    if (root.path !== undefined) warnAttrs(await setAttrs(out, root).then(() => undefined, (err: any) => `${out}: ${String(err?.code ?? err?.message ?? err)}`))
    files = 1
    bytes = root.size
  } else {
    // walk by CID so the tree is the one the directory DAG names
    const plan = await planTree(root.cid, { list: async cid => await client.json<ListedEntry[]>('GET', '/api/v0/ls', { arg: cid }), shownAs: out })
    const existed = await checkPlanOnDisk(out, plan)
    // a namespace path: its files and folders get the modes and times the namespace records (cli/tree-attrs.ts)
    const attrs = root.path === undefined ? undefined : await recordedAttrs(client, { ...root, path: root.path }, plan)
    await writeTree(g, client, plan, out, existed, attrs)
    files = plan.files.length
    bytes = plan.bytes
  }
  if (g.json) printJson({ cid: root.cid, path: out, size: bytes, files })
  else printLines(`saved ${root.cid} to ${out} (${files} file${files === 1 ? '' : 's'}, ${formatBytes(bytes)})`)
}

function formatEntry (e: FileInfo): string {
  return `${e.type === 'dir' ? 'd' : '-'} ${String(e.size).padStart(12)} ${e.cid} ${printable(e.name)}${e.type === 'dir' ? '/' : ''}`
}

/** `shoal ls [PATH|CID]`. */
export async function lsCommand (g: GlobalOptions, arg = '/'): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const entries = await client.json<FileInfo[]>('GET', '/api/v0/ls', { arg })
  if (g.json) printJson(entries)
  else printLines(...entries.map(formatEntry))
}

/** `shoal stat PATH|CID`. */
export async function statCommand (g: GlobalOptions, arg: string): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const info = await client.json<FileInfo>('GET', '/api/v0/stat', { arg })
  if (g.json) { printJson(info); return }
  const lines = [printable(info.path ?? info.name), `  type:  ${info.type}`, `  cid:   ${info.cid}`, `  size:  ${info.size} (${formatBytes(info.size)})`]
  if (info.mode !== undefined) lines.push(`  mode:  ${info.mode.toString(8).padStart(4, '0')}`)
  if (info.mtime !== undefined) lines.push(`  mtime: ${formatTime(info.mtime)}`)
  // a conflict copy says so, and what to do with it
  if (info.conflictOf !== undefined) lines.push(`  conflict copy of ${printable(info.conflictOf)}: keep it (\`shoal mv\` it to a name of its own) or \`shoal rm\` it`)
  printLines(...lines)
}

/** `shoal mkdir PATH [-p]`. */
export async function mkdirCommand (g: GlobalOptions, path: string, opts: { parents?: boolean }): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const info = await client.json<FileInfo>('POST', '/api/v0/mkdir', { arg: path, parents: opts.parents === true })
  if (g.json) printJson(info)
  await warnIfRefused(client)
}

/** `shoal mv A B`. */
export async function mvCommand (g: GlobalOptions, from: string, to: string): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const info = await client.json<FileInfo>('POST', '/api/v0/mv', { from, to })
  if (g.json) printJson(info)
  await warnIfRefused(client)
}

/** `shoal rm PATH [-r]`. */
export async function rmCommand (g: GlobalOptions, path: string, opts: { recursive?: boolean }): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  // what arrived from another node after this command began is not removed (a write concurrent with it): said
  const result = await withStart<{ removed: string, kept?: string[], keptCount?: number }>(client, 'POST', '/api/v0/rm', { arg: path, recursive: opts.recursive === true })
  if (g.json) printJson(result)
  else if (result.kept !== undefined && result.kept.length > 0) {
    const count = result.keptCount ?? result.kept.length
    const shown = result.kept.slice(0, 5).map(printable).join(', ')
    process.stderr.write(`shoal: kept ${count === 1 ? '' : `${count} paths: `}${shown}${count > 5 ? `, and ${count - 5} more` : ''}: written on another node after this rm began (a write concurrent with a removal is kept; \`shoal rm\` again removes ${count === 1 ? 'it' : 'them'})\n`)
  }
  await warnIfRefused(client)
}

/** `shoal conflicts`: every conflict copy, with the path it belongs to. */
export async function conflictsCommand (g: GlobalOptions): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  const conflicts = await client.json<ConflictInfo[]>('GET', '/api/v0/conflicts')
  if (g.json) printJson(conflicts)
  else printLines(...conflicts.map(c => `${printable(c.copy)}\tconflicts with ${printable(c.path)}\tby ${c.author} at ${formatTime(c.time)}\t${c.cid}\t${formatBytes(c.size)}`))
}
