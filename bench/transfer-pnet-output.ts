/**
 * The cost of pnet's output buffers: the private-swarm cipher as nodes run
 * it (`xsalsa20` with node/net/xsalsa20-native.ts) over 64 KiB updates, as
 * pnet calls it (output allocated by the cipher, uninitialised) against the
 * same updates into zero-filled outputs (`new Uint8Array`, what the cipher
 * allocated before). Rounds alternate; CPU milliseconds per 512 MiB.
 *
 *   npm run build && node dist/bench/transfer-pnet-output.js [--rounds 6]
 *
 * See docs/benchmarks.md, "Transfer".
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { xsalsa20Native } from '../node/net/xsalsa20-native.js'
import { fmt, log } from './harness.js'

const require = createRequire(import.meta.url)
const xsalsa20 = require('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => { update: (input: Uint8Array, output?: Uint8Array) => Uint8Array }

const FRAME = 64 * 1024
const UPDATES = 8192 // 512 MiB
const INPUTS = Array.from({ length: 64 }, () => new Uint8Array(randomBytes(FRAME)))

/** CPU ms of UPDATES updates; `zeroed`: into a fresh zero-filled output each time. */
function round (zeroed: boolean): number {
  const cipher = xsalsa20(randomBytes(24), randomBytes(32))
  const start = process.cpuUsage()
  let kept: Uint8Array[] = []
  for (let i = 0; i < UPDATES; i++) {
    const input = INPUTS[i & 63]
    // kept a little while, as frames are on their way up the stack
    kept.push(zeroed ? cipher.update(input, new Uint8Array(input.length)) : cipher.update(input))
    if (kept.length > 64) kept = []
  }
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1000
}

const at = process.argv.indexOf('--rounds')
const rounds = at === -1 ? 6 : Number(process.argv[at + 1])
if (!xsalsa20Native) throw new Error('the libsodium cipher is not in use here: nothing to measure')
const zeroed: number[] = []
const uninitialised: number[] = []
for (let r = 0; r < rounds; r++) {
  zeroed.push(round(true))
  uninitialised.push(round(false))
}
log(`pnet cipher, ${UPDATES} updates of ${FRAME / 1024} KiB (512 MiB), CPU ms per round:`)
log(`  zero-filled outputs (before): ${zeroed.map(x => fmt(x)).join(' ')}`)
log(`  outputs left uninitialised (now): ${uninitialised.map(x => fmt(x)).join(' ')}`)
