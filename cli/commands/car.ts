import { stat } from 'node:fs/promises'
import { NotFoundError } from '../../node/errors.js'
import { ApiClient } from '../client.js'
import { checkOutputPath, outputPath } from '../output-path.js'
import { downloadError, openDownloadTarget } from '../staging.js'
import { printJson, printLines, type GlobalOptions } from '../output.js'
import { fileBody, LocalReadError } from '../local-file.js'
import { byteCounter, meter, PhaseMeters, progressMode, type Meter } from '../progress.js'
import type { ProgressUpdate } from '../../node/api/progress.js'

/** `shoal car export PATH|CID -o FILE.car` (`-o -`: to stdout, as `ipfs dag export` writes). */
export async function carExportCommand (g: GlobalOptions, arg: string, opts: { output: string }): Promise<void> {
  if (opts.output === '-') { await carToStdout(g, arg); return }
  const out = outputPath(opts.output, 'file')
  await checkOutputPath(out, 'file')
  const client = await ApiClient.connect(g.repo)
  const res = await client.send('GET', '/api/v0/car/export', { arg })
  // a staging file (created exclusively, removed on failure or interruption),
  // or `out` itself when it is a device or a FIFO (cli/staging.ts)
  const target = await openDownloadTarget(out).catch(err => { throw downloadError(out, err) })
  // the CAR's size is known only at its end: a counter with its rate
  const progress = meter(g, { label: 'car export', unit: { bytes: true } })
  let size = 0
  try {
    await client.receive(res, byteCounter(n => { size += n; progress.add(n) }), target.handle.createWriteStream())
  } catch (err) {
    await target.abort()
    throw downloadError(out, err)
  } finally {
    progress.stop()
  }
  await target.finish()
  const root = String(res.headers['x-shoal-root'] ?? '')
  if (g.json) printJson({ root, path: out, size })
  else printLines(`exported ${root} to ${out}`)
}

/**
 * `car export … -o -`: the CAR on stdout and nothing else (no summary
 * line, which would end up inside the CAR); a reader that goes away (`| head`)
 * is no error. Before, `-o -` wrote a file named `-`.
 */
async function carToStdout (g: GlobalOptions, arg: string): Promise<void> {
  const client = await ApiClient.connect(g.repo)
  try {
    await client.download('/api/v0/car/export', { arg }, { fd: 1, stream: () => process.stdout })
  } catch (err: any) {
    if (err?.code === 'EPIPE') return
    throw err
  }
}

/** `shoal car import FILE.car [--to PATH] [--pin-roots true|false]`: all or nothing, roots bound into the namespace. */
export async function carImportCommand (g: GlobalOptions, file: string, opts: { to: string, pinRoots: 'true' | 'false' }): Promise<void> {
  const st = await stat(file).catch(() => { throw new NotFoundError(`cannot read ${file}: no such file`) })
  // a FIFO or a device has no size to declare, and a FIFO with no writer would hold the CLI forever
  if (st.isDirectory()) throw new LocalReadError(`cannot read ${file}: it is a directory`)
  if (!st.isFile()) throw new LocalReadError(`cannot read ${file}: not a regular file (a CAR is uploaded with its size; save it to a file first)`)
  const { size } = st
  const client = await ApiClient.connect(g.repo)
  const query: Record<string, string> = { 'pin-roots': opts.pinRoots }
  if (opts.to !== '/imported/<root cid>') query.to = opts.to
  type Result = { roots: string[], blocks: number, bytes: number, paths: Array<string | null>, unbound: Array<{ root: string, why: string }> }
  let result: Result
  if (progressMode(g) === undefined) {
    result = await client.json<Result>('POST', '/api/v0/car/import', query, { stream: fileBody(file, { size, mtimeMs: st.mtimeMs }), length: size })
  } else {
    // the upload is measured here; checking, storing and binding are told by the daemon
    const phases = new PhaseMeters()
    const upload = phases.show('upload', () => meter(g, { label: 'car import: upload', unit: { bytes: true }, total: size }))
    const stream = fileBody(file, { size, mtimeMs: st.mtimeMs, onBytes: n => { upload.add(n) } })
    try {
      result = await client.withProgress<ProgressUpdate, Result>('POST', '/api/v0/car/import', query, {
        body: { stream, length: size },
        onProgress: update => { showCarImport(g, phases, update) }
      })
    } finally {
      phases.stop()
    }
  }
  if (g.json) printJson(result)
  else {
    printLines(
      ...result.roots.map((r, i) => typeof result.paths[i] === 'string' ? `imported ${r} at ${String(result.paths[i])}` : `imported ${r}`),
      ...result.unbound.map(u => `not in the namespace (gc may drop it): ${u.root}: ${u.why}`),
      `${result.blocks} blocks`
    )
  }
}

/** The meter of a CAR import's step the daemon tells of. */
function showCarImport (g: GlobalOptions, phases: PhaseMeters, update: ProgressUpdate): void {
  if (update.phase !== 'car') return
  let m: Meter
  switch (update.step) {
    case 'checked':
      // storing has no counts: the line shows its time
      phases.show('store', () => meter(g, { label: `car import: storing ${update.blocks} checked blocks` }))
      return
    case 'published':
      m = phases.show('bind', () => meter(g, { label: 'car import: binding roots', unit: { bytes: false, noun: 'roots' } }))
      m.update(0, { note: `${update.newBlocks} new blocks` })
      return
    case 'bound':
      m = phases.show('bind', () => meter(g, { label: 'car import: binding roots', unit: { bytes: false, noun: 'roots' } }))
      m.update(update.roots, { total: update.total })
  }
}
