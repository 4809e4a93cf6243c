/**
 * What the full-disk CLI tests share: a fresh repo on a small tmpfs of its
 * own, the free space of a disk, and a writer that fills a disk to the last
 * byte (another program, as far as the daemon can tell).
 *
 * @module
 */
import assert from 'node:assert/strict'
import { open, readFile, stat, statfs, writeFile } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { dirname, join } from 'node:path'
import { mountTmpfs, tempDir } from '../helpers/temp.js'
import { shoalOk, startDaemon, type TestDaemon } from '../helpers/cli.js'

const execFileAsync = promisify(execFile)

/** One mebibyte. */
export const MiB = 1024 * 1024

/** Bytes an unprivileged writer may still use on `dir`'s disk. */
export async function free (dir: string): Promise<number> {
  const s = await statfs(dir)
  return s.bavail * s.bsize
}

/** Append zeros to `file` (created if absent) until the file system is full (at most 4 GiB). */
export async function fillUp (file: string): Promise<void> {
  const fh = await open(file, 'a')
  const chunk = Buffer.alloc(MiB)
  try {
    for (let i = 0; i < 4096; i++) await fh.write(chunk)
  } catch (err: any) {
    if (err.code !== 'ENOSPC') throw err
  } finally {
    await fh.close()
  }
}

/**
 * {@link fillUp}, but all but the last 16 MiB taken at once (`fallocate`): the
 * disk is full within milliseconds, not after the time it takes to write it,
 * so a write running beside it cannot get much further meanwhile.
 */
export async function fillUpAtOnce (file: string): Promise<void> {
  // the space may shrink between the measure and the call (a write beside it): a few tries, each with a fresh measure
  for (let tries = 0; tries < 5; tries++) {
    const room = await free(dirname(file))
    if (room <= 32 * MiB) break
    try {
      await execFileAsync('fallocate', ['-l', String(room - 16 * MiB), file])
      break
    } catch (err: any) {
      if (!/No space left/.test(String(err?.stderr ?? err?.message))) throw err
    }
  }
  await fillUp(file)
}

/** A tmpfs of `size` with a fresh repo on it: the temp dir (not on the tmpfs), the disk and the repo. */
export async function repoOnTmpfs (t: Parameters<typeof tempDir>[0], size: string): Promise<{ dir: string, disk: string, repo: string }> {
  const dir = await tempDir(t, 'shoal-disk-')
  const disk = join(dir, 'disk')
  await mountTmpfs(t, disk, size)
  const repo = join(disk, 'repo')
  await shoalOk(repo, ['init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
  return { dir, disk, repo }
}

/**
 * {@link repoOnTmpfs} with `storage.reserve` set to `reserve` and a daemon
 * started on it, once its full ballast has landed (it writes it in the
 * background after it starts: measurements wait for it).
 */
export async function daemonOnTmpfs (t: Parameters<typeof tempDir>[0], size: string, reserve: number): Promise<{ dir: string, disk: string, repo: string, daemon: TestDaemon }> {
  const { dir, disk, repo } = await repoOnTmpfs(t, size)
  await setReserve(repo, reserve)
  const daemon = await startDaemon(t, repo)
  await ballastLanded(repo, 32 * MiB)
  assert.equal((await stat(join(repo, 'ballast'))).size, 32 * MiB, 'the daemon keeps a ballast file')
  return { dir, disk, repo, daemon }
}

/** Set the repo's `storage.reserve` (bytes kept free for `rm`, `gc` and restarts). */
export async function setReserve (repo: string, bytes: number): Promise<void> {
  const configFile = join(repo, 'config.json')
  const config = JSON.parse(await readFile(configFile, 'utf8'))
  await writeFile(configFile, JSON.stringify({ ...config, storage: { ...config.storage, reserve: bytes } }))
}

/** Wait (at most 30 s) until the daemon's ballast, written in the background after it starts, has `bytes`. */
export async function ballastLanded (repo: string, bytes: number): Promise<void> {
  const ballast = join(repo, 'ballast')
  for (let i = 0; i < 300 && (await stat(ballast).catch(() => undefined))?.size !== bytes; i++) await new Promise(resolve => setTimeout(resolve, 100))
}
