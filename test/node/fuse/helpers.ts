/**
 * Shared helpers of the FUSE tests: a real mount served by this process
 * over real components (LevelDB block store, in-memory namespace replica),
 * and child processes to touch it — this process serves the mount, so it
 * must never make a file-system call on it itself (it would wait for itself).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { access, constants, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { Files } from '../../../node/files/index.js'
import { parseChunker } from '../../../node/content/index.js'
import { MemoryKV, Replica, peerIdVerifier, signerFromKey } from '../../../node/namespace/index.js'
import { FuseService } from '../../../node/fuse/index.js'
import { DEFAULT_CONFIG, type RepoConfig } from '../../../node/repo/index.js'
import { defer, openBlockStore, tempDir, type CleanupContext } from '../../helpers/temp.js'
import type { PackBlockStore } from '../../../node/blocks/index.js'
import type { Logger } from '../../../node/logger.js'
import type { DiskGuard } from '../../../node/repo/disk.js'

/** A logger that says nothing. */
export const silent = pino({ level: 'silent' })

/** Bound of one child process touching a mount. */
const CHILD_TIMEOUT_MS = 30_000

/**
 * Fail (never skip) when this machine cannot mount: FUSE is part of what
 * the suite checks.
 */
export async function requireFuse (): Promise<void> {
  try {
    await access('/dev/fuse', constants.R_OK | constants.W_OK)
  } catch (err: any) {
    assert.fail(`FUSE is unusable here: /dev/fuse cannot be opened (${String(err?.code)}); the FUSE tests need the fuse kernel module and access to /dev/fuse`)
  }
  const r = await sh('command -v fusermount', { timeoutMs: 5000 })
  assert.equal(r.code, 0, 'FUSE is unusable here: fusermount is not installed (apt-get install fuse libfuse2; .ci/run does it)')
}

/** What a child process did. */
export interface ChildResult { code: number | null, stdout: string, stderr: string }

/** Run `sh -c script` (bounded; killed and rejected past `timeoutMs`). */
export async function sh (script: string, opts: { cwd?: string, timeoutMs?: number, env?: Record<string, string> } = {}): Promise<ChildResult> {
  return await child('sh', ['-c', script], opts)
}

/** Run `python3 -c code` (bounded). */
export async function python (code: string, opts: { cwd?: string, timeoutMs?: number } = {}): Promise<ChildResult> {
  return await child('python3', ['-c', code], opts)
}

/** `sh -c script` that must exit 0; returns its stdout. */
export async function shOk (script: string, opts: { cwd?: string, timeoutMs?: number, env?: Record<string, string> } = {}): Promise<string> {
  const r = await sh(script, opts)
  assert.equal(r.code, 0, `\`${script}\` exited ${String(r.code)}: ${r.stderr}`)
  return r.stdout
}

async function child (cmd: string, args: string[], opts: { cwd?: string, timeoutMs?: number, env?: Record<string, string> }): Promise<ChildResult> {
  const timeoutMs = opts.timeoutMs ?? CHILD_TIMEOUT_MS
  const proc = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  return await new Promise<ChildResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error(`${cmd} ${args.join(' ').slice(0, 200)} did not finish within ${timeoutMs} ms; stderr: ${stderr}`))
    }, timeoutMs)
    proc.once('error', err => { clearTimeout(timer); reject(err) })
    proc.once('close', code => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

/** A mount served by this process. */
export interface TestMount {
  /** The mountpoint. */
  dir: string
  service: FuseService
  namespace: Replica
  files: Files
  /** The block store's directory (its packs under `packs/`). */
  blocks: string
  blockstore: PackBlockStore
  /** Unmount (committing what is staged). Idempotent; also done at cleanup. */
  unmount: () => Promise<void>
}

/** Options of {@link mountTestNode}. */
export interface TestMountOptions {
  /** `fuse` config overrides. */
  fuse?: Partial<RepoConfig['fuse']>
  /** Give the service the block store, so reads of committed files can be placed in its records (record-places.ts). */
  places?: boolean
  /** The service's logger. @default silent */
  logger?: Logger
}

/**
 * A files API over a LevelDB block store under `root` and an in-memory
 * namespace replica, closed when the test ends; `disk` checks room for adds.
 */
export async function openTestFiles (t: CleanupContext, root: string, options: { disk?: DiskGuard } = {}): Promise<{ blockstore: PackBlockStore, namespace: Replica, files: Files }> {
  const blockstore = await openBlockStore(t, join(root, 'blocks'))
  const namespace = await testReplica(t)
  return { blockstore, namespace, files: new Files({ blockstore, namespace, logger: silent, disk: options.disk }) }
}

/**
 * Build a node's FUSE service over a LevelDB block store and an in-memory
 * namespace replica (no network, no durability service: the FUSE layer is
 * what is tested) and mount it on a fresh directory. Unmounted and removed
 * when the test ends, pass or fail.
 */
export async function mountTestNode (t: CleanupContext, options: TestMountOptions = {}): Promise<TestMount> {
  await requireFuse()
  const root = await tempDir(t, 'shoal-fuse-')
  const dir = join(root, 'mnt')
  await mkdir(dir)
  await mkdir(join(root, 'repo', 'tmp'), { recursive: true })
  const { blockstore, namespace, files } = await openTestFiles(t, root)
  const service = new FuseService({
    files,
    namespace,
    repo: { root: join(root, 'repo'), tmp: join(root, 'repo', 'tmp'), uncommitted: join(root, 'repo', 'uncommitted'), fuseJournal: join(root, 'repo', 'fuse-journal') },
    config: { fuse: { ...DEFAULT_CONFIG.fuse, ...options.fuse } },
    chunker: parseChunker('fastcdc'),
    logger: options.logger ?? silent,
    blockstore: options.places === true ? blockstore : undefined
  })
  await service.mount(dir)
  let unmounted: Promise<void> | undefined
  const unmount = async (): Promise<void> => {
    unmounted ??= (async () => {
      try {
        await service.stop()
      } finally {
        // whatever happened above, leave no mount behind
        await forceUnmount(dir)
      }
    })()
    await unmounted
  }
  defer(t, unmount)
  return { dir, service, namespace, files, blocks: join(root, 'blocks'), blockstore, unmount }
}

/** An in-memory namespace replica with a key of its own, open, closed when the test ends. */
export async function testReplica (t: CleanupContext): Promise<Replica> {
  const replica = new Replica({
    kv: new MemoryKV(),
    signer: signerFromKey(await generateKeyPair('Ed25519')),
    verifier: peerIdVerifier(),
    clock: { now: () => Date.now() },
    logger: silent
  })
  await replica.open()
  defer(t, async () => { await replica.close() })
  return replica
}

/**
 * Another node writing into `m`'s namespace: its own replica (its own key),
 * whose entries `m`'s replica receives as a peer's would arrive (the mount
 * is told of a remote change), over `m`'s block store (the blocks a pull
 * would bring). `add` resolves once `m` has applied the entry.
 */
export async function otherNode (t: CleanupContext, m: Pick<TestMount, 'blockstore' | 'namespace'>): Promise<{ add: (path: string, bytes: Uint8Array) => Promise<void> }> {
  const namespace = await testReplica(t)
  let received: Promise<unknown> = Promise.resolve()
  namespace.onLocalEntries(entries => { received = received.then(async () => await m.namespace.receive(entries)) })
  const files = new Files({ blockstore: m.blockstore, namespace, logger: silent })
  return {
    add: async (path, bytes) => {
      await files.add(path, (async function * () { yield bytes })(), { chunker: parseChunker('size-262144') })
      await received
    }
  }
}

/** Leave no mount at `dir` behind, whatever happened (`fusermount -uz` when it is a mountpoint). */
export async function forceUnmount (dir: string): Promise<void> {
  await sh(`grep -q " ${dir} " /proc/self/mountinfo && fusermount -uz ${dir} || true`, { timeoutMs: 10_000 }).catch(() => {})
}

/** Poll `fn` until it returns true (a throw counts as not yet) or `ms` pass. */
export async function eventually (fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  let last: unknown
  while (Date.now() < deadline) {
    last = await fn().catch(err => err)
    if (last === true) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  assert.fail(`not within ${ms} ms: ${what} (last: ${String(last)})`)
}

/** Shell-quote a path. */
export function q (s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`
}

/**
 * `tail -f` of `path`, polling every 0.1 s (a FUSE file system sends no
 * inotify events of another node's changes), killed when `t` ends. Returns
 * what it has printed so far.
 */
export function tailFollow (t: CleanupContext, path: string): () => string {
  const tail = spawn('tail', ['-f', '---disable-inotify', '-s', '0.1', path], { stdio: ['ignore', 'pipe', 'pipe'] })
  defer(t, async () => {
    if (tail.exitCode !== null || tail.signalCode !== null) return
    const gone = new Promise(resolve => tail.once('close', resolve))
    tail.kill('SIGKILL')
    await gone
  })
  let out = ''
  tail.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
  return () => out
}
