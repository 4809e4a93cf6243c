/**
 * The caller's own pipe: `shoal cat CID | program` written by the daemon
 * straight into the pipe the CLI's stdout is, instead of through the API's
 * HTTP answer and the CLI process.
 *
 * Why: on the path of a `cat` the CLI only copies — it reads the answer from
 * a loopback TCP socket and writes it to its stdout — and on a machine whose
 * cores a remote read already keeps busy (the two daemons of the transfer,
 * the program reading the output) that copy, and the daemon's HTTP writes
 * that feed it, are a share of the whole read (docs/benchmarks.md,
 * "Transfer"). A pipe has no offset, so a second writer at its end writes
 * exactly what the CLI would have: the bytes arrive in the same order at
 * the same reader.
 *
 * How: the CLI names its process id and the inode of its stdout pipe
 * (`pipe-pid`, `pipe-ino`). The daemon proves that the process holds the
 * requesting connection — the client end of this request's loopback TCP
 * connection is found in `/proc/net/tcp` (or `tcp6`) and its socket inode
 * among the links of `/proc/<pid>/fd`, and the process runs as the user
 * that opened that socket (all of its user ids: a connection handed to a
 * process of another user, by SCM_RIGHTS or to a set-user-id program, does
 * not make that process the caller), with its group ids all one (a
 * set-group-id program's pipe may be one its user could not write) — then takes `/proc/<pid>/fd/1` by
 * `O_PATH` (the inode only: no device's or terminal's open runs, whatever
 * the descriptor is), checks that it is a FIFO with the named inode, and
 * that the process's descriptor 1 is open for writing on that very inode
 * (`/proc/<pid>/fdinfo/1`: its access mode, mount and inode; holding an
 * `O_PATH` descriptor or a read end of a pipe is not being allowed to write
 * it, and a daemon running as root could write what the caller may not).
 * Only then is the pipe opened for writing (a new open file description,
 * non-blocking, never a controlling terminal), and the ownership proved
 * again (a process id reused in between fails it). So a caller can only
 * direct the output into a pipe that a process of its own user, holding
 * its connection, holds open for writing: one its user could have written
 * anyway. The open also needs the kernel's permission (the daemon's user
 * must be the caller's, or root).
 *
 * When it applies: Linux 5.14 on (`fdinfo` shows inodes), a request over
 * loopback, a stdout that is a pipe or a FIFO (not a terminal, a file or a
 * socket: a file has an offset the daemon's open would not share). Anything else, or any check failing, and
 * the answer is the HTTP body as before: the CLI handles both.
 *
 * @module
 */
import { close, constants, fstat, open } from 'node:fs'
import { readdir, readFile, readlink } from 'node:fs/promises'
import { promisify } from 'node:util'
import { isIPv4, isIPv6, Socket } from 'node:net'
import { endianness } from 'node:os'
import { AbortedError } from '../errors.js'
import type { IncomingMessage } from 'node:http'
import type { CatPipeAnswer } from '../../protocol/cat-output.js'

/** What the caller claims its stdout is. */
export interface PipeClaim {
  /** The process id of the caller (the CLI). */
  pid: number
  /** The inode of the pipe its descriptor 1 is, as `fstat` gives it. */
  ino: bigint
}

/** The caller's pipe, open for writing; or why it was not opened. */
export type CallerPipe = { ok: true, socket: Socket } | { ok: false, reason: string }

/** Where the `/proc` files are read from (tests point it at a fixture). */
export interface CallerPipeOptions {
  /** @default '/proc' */
  proc?: string
}

/**
 * Open the stdout pipe of the process that made `req`, when `claim` is true
 * of it (see the module comment). Never throws: a failed check or open is
 * `{ ok: false, reason }`, and the caller answers with the HTTP body.
 */
export async function openCallerPipe (req: IncomingMessage, claim: PipeClaim, options: CallerPipeOptions = {}): Promise<CallerPipe> {
  const proc = options.proc ?? '/proc'
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' }
  const { remoteAddress, remotePort, localAddress, localPort } = req.socket
  if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) return { ok: false, reason: 'no socket addresses' }
  if (!isLoopback(remoteAddress)) return { ok: false, reason: 'not a loopback connection' }
  let conn: ClientSocket | undefined
  try {
    conn = await clientSocket({ proc, client: { address: remoteAddress, port: remotePort }, server: { address: localAddress, port: localPort } })
  } catch (err: any) {
    return { ok: false, reason: `connection table not readable: ${String(err?.message)}` }
  }
  if (conn === undefined) return { ok: false, reason: 'connection not found' }
  const held = await holdsConnection(proc, claim.pid, conn)
  if (held !== undefined) return { ok: false, reason: held }
  if (O_PATH === undefined) return { ok: false, reason: `no O_PATH on ${process.arch}` }
  // the inode only, not an open of it: no driver's open runs (a terminal, a
  // device) whatever the caller's descriptor 1 turns out to be
  let named: number
  try {
    named = await openFd(`${proc}/${claim.pid}/fd/1`, O_PATH)
  } catch (err: any) {
    return { ok: false, reason: `stdout not opened: ${String(err?.code ?? err?.message)}` }
  }
  // a bare descriptor, not a FileHandle: the socket below owns it (a FileHandle would close it when collected)
  let fd: number | undefined
  try {
    const stat = await fstatFd(named, { bigint: true })
    if (!stat.isFIFO()) throw new Error('stdout is not a pipe')
    if (stat.ino !== claim.ino) throw new Error('stdout is not the pipe named')
    // holding a descriptor of the pipe is not being allowed to write it (an
    // O_PATH descriptor, a read end): the caller's own descriptor 1 must be
    // open for writing, on the very inode opened here
    const theirs = await fdInfo(`${proc}/${claim.pid}/fdinfo/1`)
    const ours = await fdInfo(`/proc/self/fdinfo/${named}`)
    if (theirs.ino === undefined || ours.ino === undefined) throw new Error('descriptor inodes not shown (Linux before 5.14)')
    if (theirs.ino !== ours.ino || theirs.mntId !== ours.mntId) throw new Error('stdout is not the pipe named')
    if (!writable(theirs.flags)) throw new Error('stdout is not open for writing')
    fd = await openFd(`/proc/self/fd/${named}`, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
    const opened = await fstatFd(fd, { bigint: true })
    if (opened.dev !== stat.dev || opened.ino !== stat.ino) throw new Error('stdout is not the pipe named')
    // a process id reused between the first check and the open holds another table
    const still = await holdsConnection(proc, claim.pid, conn)
    if (still !== undefined) throw new Error(still)
  } catch (err: any) {
    if (fd !== undefined) await closeFd(fd)
    return { ok: false, reason: String(err?.code ?? err?.message) }
  } finally {
    await closeFd(named)
  }
  // the descriptor passes to the socket, which closes it when destroyed
  const socket = new Socket({ fd, readable: false, writable: true })
  return { ok: true, socket }
}

const openFd = promisify(open)

/**
 * `O_PATH` where Node does not name it: Linux's value on the architectures
 * listed (alpha, parisc and sparc, which differ, are not among Node's).
 * Undefined elsewhere, and the pipe is then not taken.
 */
const O_PATH = process.platform === 'linux' && ['x64', 'ia32', 'arm64', 'arm', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips', 'mipsel'].includes(process.arch) ? 0o10000000 : undefined

/** What `/proc/<pid>/fdinfo/<fd>` tells of a descriptor. */
interface FdInfo {
  /** The open flags (`O_ACCMODE` bits, `O_PATH`, …). */
  flags: number
  /** The mount the file is on. */
  mntId: string | undefined
  /** The file's inode number (Linux 5.14 on). */
  ino: string | undefined
}

/** Read a descriptor's `fdinfo` file. */
async function fdInfo (path: string): Promise<FdInfo> {
  const text = await readFile(path, 'latin1')
  const field = (name: string): string | undefined => new RegExp(`^${name}:\\s*(\\S+)$`, 'm').exec(text)?.[1]
  const flags = field('flags')
  if (flags === undefined || !/^[0-7]+$/.test(flags)) throw new Error(`no flags in ${path}`)
  return { flags: parseInt(flags, 8), mntId: field('mnt_id'), ino: field('ino') }
}

/** Whether open flags allow writing: `O_WRONLY` or `O_RDWR`, and not an `O_PATH` descriptor. */
function writable (flags: number): boolean {
  if (O_PATH !== undefined && (flags & O_PATH) !== 0) return false
  const mode = flags & 3 // O_ACCMODE
  return mode === constants.O_WRONLY || mode === constants.O_RDWR
}
const fstatFd = promisify(fstat)
const closeFd = promisify(close)

/**
 * How a {@link writeToPipe} ended: bytes written, and whether the pipe's
 * reader went away (`EPIPE`) first, the source then stopped. The bytes are
 * those of the writes the pipe took whole: when the reader went away, the
 * write it failed may have put some bytes in the pipe too, never counted.
 */
export type PipeWritten = CatPipeAnswer

/**
 * Write every chunk of `source` into `socket`, waiting while the pipe is
 * full, then close it once its bytes are in the pipe. The socket is closed
 * whatever happens (an error of the source, `signal`), so the pipe's reader
 * is never left with a writer that will not write. Once the pipe failed no
 * further chunk is read from the source.
 *
 * @throws the source's error; {@link AbortedError} when `signal` fires (the client went away)
 */
export async function writeToPipe (source: AsyncIterable<Uint8Array>, socket: Socket, signal: AbortSignal): Promise<PipeWritten> {
  let failure: NodeJS.ErrnoException | undefined
  const onError = (err: NodeJS.ErrnoException): void => { failure ??= err }
  socket.on('error', onError)
  // not `socket.bytesWritten`: that counts bytes handed to the socket, the
  // ones still queued when the reader went away included
  let bytes = 0
  const counted = (n: number) => (err?: Error | null): void => { if (err == null) bytes += n }
  const it = source[Symbol.asyncIterator]()
  try {
    for (let step = await it.next(); step.done !== true; step = await it.next()) {
      if (!socket.write(step.value, counted(step.value.byteLength))) await drained(socket, signal)
      if (signal.aborted) throw new AbortedError('client went away')
      if (failure !== undefined) break
    }
    if (failure === undefined) await ended(socket, signal)
  } catch (err) {
    if (failure === undefined) {
      await it.return?.().catch(() => {})
      throw err
    }
  } finally {
    socket.off('error', onError)
    socket.destroy()
  }
  if (failure !== undefined) {
    await it.return?.().catch(() => {})
    if (failure.code !== 'EPIPE') throw failure
    return { bytes, readerGone: true }
  }
  return { bytes, readerGone: false }
}

/** Resolve on `drain`, or once the socket fails or closes; reject when `signal` fires. */
async function drained (socket: Socket, signal: AbortSignal): Promise<void> {
  await settled(socket, signal, 'drain', () => {})
}

/** End the socket and resolve once its bytes are written (or it failed); reject when `signal` fires. */
async function ended (socket: Socket, signal: AbortSignal): Promise<void> {
  await settled(socket, signal, 'finish', () => socket.end())
}

async function settled (socket: Socket, signal: AbortSignal, event: 'drain' | 'finish', start: () => void): Promise<void> {
  if (signal.aborted) throw new AbortedError('client went away')
  if (socket.destroyed) return
  await new Promise<void>((resolve, reject) => {
    const done = (): void => { cleanup(); resolve() }
    const aborted = (): void => { cleanup(); reject(new AbortedError('client went away')) }
    const cleanup = (): void => {
      socket.off(event, done)
      socket.off('error', done)
      socket.off('close', done)
      signal.removeEventListener('abort', aborted)
    }
    socket.once(event, done)
    socket.once('error', done)
    socket.once('close', done)
    signal.addEventListener('abort', aborted, { once: true })
    start()
  })
}

/** An address on this machine's loopback: 127/8, ::1, or 127/8 mapped into IPv6. */
function isLoopback (address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  if (isIPv4(v4)) return v4.startsWith('127.')
  return address === '::1'
}

interface Endpoint { address: string, port: number }

/** The client end of a connection, as the kernel's connection table shows it. */
interface ClientSocket {
  /** The socket's inode number. */
  inode: string
  /** The user that opened the socket. */
  uid: string
}

/**
 * The client end of the loopback TCP connection from `client` to `server`,
 * from the kernel's connection tables; undefined when no established
 * connection has those ends.
 */
async function clientSocket (init: { proc: string, client: Endpoint, server: Endpoint }): Promise<ClientSocket | undefined> {
  const { proc, client, server } = init
  for (const table of ['tcp', 'tcp6'] as const) {
    const local = procAddresses(client, table)
    const remote = procAddresses(server, table)
    if (local.length === 0 || remote.length === 0) continue
    let text: string
    try {
      text = await readFile(`${proc}/net/${table}`, 'latin1')
    } catch (err: any) {
      if (err?.code === 'ENOENT') continue // no IPv6 in this kernel
      throw err
    }
    for (const line of text.split('\n')) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/)
      if (f.length < 10 || f[3] !== '01') continue
      if (local.includes(f[1]) && remote.includes(f[2])) return { inode: f[9], uid: f[7] }
    }
  }
  return undefined
}

/**
 * `address:port` as the kernel's table `table` writes it (each 32-bit word
 * of the address in the machine's order, hex upper case); none when the
 * address cannot be in that table.
 */
function procAddresses (end: Endpoint, table: 'tcp' | 'tcp6'): string[] {
  const port = end.port.toString(16).toUpperCase().padStart(4, '0')
  const mapped = end.address.startsWith('::ffff:') && isIPv4(end.address.slice(7)) ? end.address.slice(7) : undefined
  const v4 = isIPv4(end.address) ? end.address : mapped
  const out: string[] = []
  if (table === 'tcp') {
    if (v4 !== undefined) out.push(`${words(v4Bytes(v4))}:${port}`)
    return out
  }
  if (v4 !== undefined) out.push(`${words([...new Array(10).fill(0), 0xff, 0xff, ...v4Bytes(v4)])}:${port}`)
  else if (isIPv6(end.address)) out.push(`${words(v6Bytes(end.address))}:${port}`)
  return out
}

function v4Bytes (address: string): number[] {
  return address.split('.').map(Number)
}

function v6Bytes (address: string): number[] {
  const [head, tail = ''] = address.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === '' ? [] : tail.split(':')
  const groups = address.includes('::') ? [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t] : h
  return groups.flatMap(g => { const v = parseInt(g, 16); return [v >> 8, v & 0xff] })
}

/** Bytes as the kernel prints an address: 32-bit words, each read in the machine's byte order. */
function words (bytes: number[]): string {
  const little = endianness() === 'LE'
  let out = ''
  for (let i = 0; i < bytes.length; i += 4) {
    for (let j = 0; j < 4; j++) out += bytes[i + (little ? 3 - j : j)].toString(16).toUpperCase().padStart(2, '0')
  }
  return out
}

/**
 * Why process `pid` is not the one that made the connection `conn`, or
 * undefined when it is: it runs as the user that opened the socket (every
 * one of its user ids: not another user's process, not a set-user-id
 * program) and has a descriptor on it. A socket passes to another process
 * with SCM_RIGHTS or across a fork, and a process of another user that
 * holds the caller's connection (a bus, a display server) is not the caller.
 */
async function holdsConnection (proc: string, pid: number, conn: ClientSocket): Promise<string | undefined> {
  const ids = await processIds(proc, pid)
  if (ids === undefined) return 'process not found'
  if (ids.uids.some(uid => uid !== conn.uid)) return 'process runs as another user than its connection'
  if (ids.gids.some(gid => gid !== ids.gids[0])) return 'process runs with a group it was not started with (set-group-id)'
  return await holdsSocket(proc, pid, conn.inode) ? undefined : 'process does not hold the connection'
}

/** The real, effective, saved and filesystem user and group ids of process `pid`; undefined when it is gone. */
async function processIds (proc: string, pid: number): Promise<{ uids: string[], gids: string[] } | undefined> {
  const status = await readFile(`${proc}/${pid}/status`, 'latin1').catch(() => undefined)
  if (status === undefined) return undefined
  const ids = (name: string): string[] | undefined => new RegExp(`^${name}:\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s*$`, 'm').exec(status)?.slice(1)
  const uids = ids('Uid')
  const gids = ids('Gid')
  return uids === undefined || gids === undefined ? undefined : { uids, gids }
}

/** Whether process `pid` has a descriptor on the socket with inode `inode`. */
async function holdsSocket (proc: string, pid: number, inode: string): Promise<boolean> {
  const dir = `${proc}/${pid}/fd`
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return false
  }
  const want = `socket:[${inode}]`
  for (const name of names) {
    const target = await readlink(`${dir}/${name}`).catch(() => undefined)
    if (target === want) return true
  }
  return false
}
