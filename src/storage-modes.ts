import { chmod, lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from './log.js'

/** New files and folders of this process and its children (Keycloak): owner only. */
export const OWNER_ONLY_UMASK = 0o077

const GROUP_AND_OTHERS = 0o077

/**
 * Takes group and other permissions off everything under `dir` (itself included): folders end
 * up 0700, files 0600 (an owner's execute bit stays). Symbolic links are neither followed nor
 * changed. Returns how many entries were changed; entries it may not change are counted apart.
 */
export async function restrictToOwner(dir: string): Promise<{ changed: number; refused: number }> {
  const result = { changed: 0, refused: 0 }
  const visit = async (path: string): Promise<void> => {
    const info = await lstat(path).catch(() => undefined)
    if (!info || info.isSymbolicLink()) {
      return
    }
    if ((info.mode & GROUP_AND_OTHERS) !== 0) {
      try {
        await chmod(path, info.mode & 0o7700 & ~GROUP_AND_OTHERS)
        result.changed++
      } catch {
        result.refused++
      }
    }
    if (info.isDirectory()) {
      for (const entry of await readdir(path).catch(() => [])) {
        await visit(join(path, entry))
      }
    }
  }
  await visit(dir)
  return result
}

/**
 * The app's state (secrets, the embedded databases, Keycloak's H2 files with realm keys and
 * client secrets) is for its owner alone: sets the umask that every file created from now on
 * gets, in this process and the Keycloak it starts, and fixes what earlier versions created.
 */
export async function keepStateOwnerOnly(storageDir: string, log: Logger): Promise<void> {
  process.umask(OWNER_ONLY_UMASK)
  const { changed, refused } = await restrictToOwner(storageDir)
  if (changed > 0) {
    log.warn({ storageDir, changed }, 'storage.permissions_restricted')
  }
  if (refused > 0) {
    log.error(
      {
        storageDir,
        refused,
        hint: 'state files readable by others could not be changed: give them to the app user',
      },
      'storage.permissions_unchanged',
    )
  }
}
