import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { InvalidArgumentError, NotFoundError } from '../../node/errors.js'
import { ApiClient } from '../client.js'
import { checkOutputPath } from '../output-path.js'
import { printJson, printLines, type GlobalOptions } from '../output.js'

/** `shoal car export PATH|CID -o FILE.car`. */
export async function carExportCommand (g: GlobalOptions, arg: string, opts: { output: string }): Promise<void> {
  await checkOutputPath(opts.output, 'file')
  const client = await ApiClient.connect(g.repo)
  const res = await client.send('GET', '/api/v0/car/export', { arg })
  const tmp = `${opts.output}.shoal-partial-${process.pid}`
  try {
    await pipeline(res, createWriteStream(tmp))
    await rename(tmp, opts.output)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  const root = String(res.headers['x-shoal-root'] ?? '')
  const { size } = await stat(opts.output)
  if (g.json) printJson({ root, path: opts.output, size })
  else printLines(`exported ${root} to ${opts.output}`)
}

/** `shoal car import FILE.car [--to PATH] [--pin-roots true|false]`: all or nothing, roots bound into the namespace. */
export async function carImportCommand (g: GlobalOptions, file: string, opts: { to: string, pinRoots: string }): Promise<void> {
  if (opts.pinRoots !== 'true' && opts.pinRoots !== 'false') throw new InvalidArgumentError(`--pin-roots takes true or false, not ${JSON.stringify(opts.pinRoots)}`)
  const { size } = await stat(file).catch(() => { throw new NotFoundError(`cannot read ${file}: no such file`) })
  const client = await ApiClient.connect(g.repo)
  const query: Record<string, string> = { 'pin-roots': opts.pinRoots }
  if (opts.to !== '/imported/<root cid>') query.to = opts.to
  const result = await client.json<{ roots: string[], blocks: number, bytes: number, paths: Array<string | null>, unbound: Array<{ root: string, why: string }> }>('POST', '/api/v0/car/import', query, { stream: createReadStream(file), length: size })
  if (g.json) printJson(result)
  else {
    printLines(
      ...result.roots.map((r, i) => typeof result.paths[i] === 'string' ? `imported ${r} at ${String(result.paths[i])}` : `imported ${r}`),
      ...result.unbound.map(u => `not in the namespace (gc may drop it): ${u.root}: ${u.why}`),
      `${result.blocks} blocks`
    )
  }
}
