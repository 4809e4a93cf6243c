/**
 * Opens the store at argv[2] (which migrates a former-layout store, in small
 * batches) and prints `migrated <n>`; migrate.test.ts kills it mid-way.
 */
import { createBlockStore } from '../../../node/blocks/index.js'

const store = createBlockStore({}, { path: process.argv[2], migrateBatchBytes: 64 * 1024 })
process.stdout.write('ready\n')
await store.open()
process.stdout.write(`migrated ${store.migrated}\n`)
await store.close()
