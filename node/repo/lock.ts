import { open, readFile, unlink } from 'node:fs/promises'
import { RepoLockedError } from '../errors.js'

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    return err.code === 'EPERM'
  }
}

/**
 * Take the repo's daemon lock: a file created exclusively holding our pid. A
 * lock left by a dead process is taken over.
 *
 * @returns a function that releases the lock
 * @throws {RepoLockedError} when a live daemon holds it
 */
export async function acquireRepoLock (file: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600)
      await handle.writeFile(String(process.pid))
      await handle.sync()
      await handle.close()
      return async () => { await unlink(file).catch(() => {}) }
    } catch (err: any) {
      if (err.code !== 'EEXIST') throw err
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim())
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new RepoLockedError(`another daemon (pid ${pid}) is already running on repo ${file.replace(/\/daemon\.lock$/, '')}`)
      }
      await unlink(file).catch(() => {})
    }
  }
  throw new RepoLockedError(`could not take the repo lock ${file}`)
}
