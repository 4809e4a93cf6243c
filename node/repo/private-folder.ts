/**
 * The repo folder is for its owner alone: it holds the API token, the
 * identity key, the swarm key and every block of the swarm this node
 * stores, in plain text. Its files of keys are made 0600, but the stores
 * (blocks, namespace, durability, the FUSE cache) are made with the umask,
 * readable by all; only a repo folder closed to other users (0700) keeps
 * them private.
 *
 * `init` makes a new repo folder 0700. A folder that was there before (made
 * by `mkdir`, a mount point, a service's state directory) kept its mode,
 * usually 0755, and every local user could read the swarm's data. Now
 * `init` takes group and other permissions away from it too
 * ({@link closeRepoFolder}), and the daemon warns at start about a repo
 * folder that others can still enter ({@link repoFolderOpenMode}).
 *
 * @module
 */
import { chmod, stat } from 'node:fs/promises'

/** Permission bits of group and others. */
const OTHERS = 0o077

/** The sticky bit: a folder several users share (`/tmp`). */
const STICKY = 0o1000

/** What {@link closeRepoFolder} did. */
export type CloseResult =
  /** Others had no access already. */
  | 'closed'
  /** Group and other permissions were taken away. */
  | 'changed'
  /** Left as it was: another user's folder, a shared one (sticky bit, like `/tmp`), or one whose mode cannot be changed. */
  | 'left'

/**
 * Take group and other permissions away from the repo folder `root`, when
 * this user owns it and it is not a shared folder (sticky bit): what was
 * there before `init` is the repo's now. Another user's folder or a shared
 * one is left as it was, as is a folder whose file system refuses the
 * change (the daemon's warning names it).
 */
export async function closeRepoFolder (root: string): Promise<CloseResult> {
  const st = await stat(root)
  if ((st.mode & OTHERS) === 0) return 'closed'
  const uid = process.getuid?.()
  if ((st.mode & STICKY) !== 0 || (uid !== undefined && st.uid !== uid)) return 'left'
  try {
    await chmod(root, st.mode & 0o7777 & ~OTHERS)
  } catch {
    // a file system without Unix modes (vfat, some network mounts): the daemon's warning says so
    return 'left'
  }
  return 'changed'
}

/** The repo folder's permission bits (`0755`) when group or others may enter or read it; undefined when it is closed to them. */
export async function repoFolderOpenMode (root: string): Promise<string | undefined> {
  const mode = (await stat(root)).mode & 0o7777
  return (mode & OTHERS) === 0 ? undefined : mode.toString(8).padStart(4, '0')
}
