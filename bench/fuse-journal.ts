/**
 * What the journal of closed files (node/fuse/journal.ts) adds to each file
 * a program closes through the mount: one record when `close` is
 * acknowledged, one `done` mark when the commit lands. Its ceiling, in the
 * same run: a bare `write(2)` of the same bytes (the file's 4 KiB and a
 * record's ~150 bytes of header) at the end of one file.
 *
 * ```sh
 * npm run build && node dist/bench/fuse-journal.js [--files 10000] [--bytes 4096] [--rounds 5]
 * ```
 *
 * Prints, per round, µs per file for the journal (record + done) and for
 * the bare write, and the medians. The journal's folder is on the same disk
 * as a repo would be (a temp folder under the current directory). Compare
 * the figure with a create through the mount (`bench/fuse.ts`: ~1,000–2,400
 * files/s, 400–1,000 µs a file).
 *
 * @module
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ClosedJournal } from '../node/fuse/journal.js'
import { median } from './harness.js'

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '10000' },
    bytes: { type: 'string', default: '4096' },
    rounds: { type: 'string', default: '5' }
  }
})
const files = Number(values.files)
const size = Number(values.bytes)
const rounds = Number(values.rounds)
if (!Number.isSafeInteger(files) || files < 1 || !Number.isSafeInteger(size) || size < 0 || !Number.isSafeInteger(rounds) || rounds < 1) {
  console.error('fuse-journal: --files, --bytes and --rounds take positive whole numbers')
  process.exit(2)
}

const dir = mkdtempSync(join(process.cwd(), '.bench-fuse-journal-'))
process.on('exit', () => { rmSync(dir, { recursive: true, force: true }) })
const bytes = Buffer.alloc(size, 7)
const journalUs: number[] = []
const ceilingUs: number[] = []

for (let round = 1; round <= rounds; round++) {
  const journal = new ClosedJournal(join(dir, `journal-${round}`))
  let t = process.hrtime.bigint()
  for (let i = 0; i < files; i++) {
    journal.closed({ id: i + 1, gen: 1, path: `/some/folder/file-${i}.txt`, mode: 0o644, mtime: Date.now(), replacing: null, size }, { bytes })
  }
  for (let i = 0; i < files; i++) journal.done(i + 1, 1)
  journalUs.push(Number(process.hrtime.bigint() - t) / files / 1000)
  journal.close()

  const header = Buffer.alloc(150, 1)
  const fd = openSync(join(dir, `ceiling-${round}`), 'wx', 0o600)
  t = process.hrtime.bigint()
  let at = 0
  for (let i = 0; i < files; i++) {
    at += writeSync(fd, header, 0, header.length, at)
    at += writeSync(fd, bytes, 0, bytes.length, at)
  }
  ceilingUs.push(Number(process.hrtime.bigint() - t) / files / 1000)
  closeSync(fd)
  rmSync(join(dir, `ceiling-${round}`))
  console.log(`round ${round}: journal ${journalUs[round - 1].toFixed(1)} µs a file (record + done), bare write ${ceilingUs[round - 1].toFixed(1)} µs`)
}
const j = median(journalUs)
const c = median(ceilingUs)
console.log(`median: journal ${j.toFixed(1)} µs a file, bare write ${c.toFixed(1)} µs: ${(j / c).toFixed(2)} × (${files} files of ${size} B, ${rounds} rounds)`)
