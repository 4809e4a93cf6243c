/**
 * The repo on disk: layout, config, identity, API token, daemon lock.
 *
 * @module
 */
export { resolveRepoPath, repoLayout, type RepoLayout } from './layout.js'
export { loadConfig, saveConfig, DEFAULT_CONFIG, RepoConfigSchema, type RepoConfig } from './config.js'
export { initRepo, loadIdentity, repoExists, type InitOptions, type InitResult } from './init.js'
export { acquireRepoLock, markStopping, type RepoLockOptions } from './lock.js'
export { closeRepoFolder, repoFolderOpenMode, type CloseResult } from './private-folder.js'
