import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { NotFoundError } from '../../node/errors.js'
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

/** `shoal car import FILE.car`: all or nothing. */
export async function carImportCommand (g: GlobalOptions, file: string): Promise<void> {
  const { size } = await stat(file).catch(() => { throw new NotFoundError(`cannot read ${file}: no such file`) })
  const client = await ApiClient.connect(g.repo)
  const result = await client.json<{ roots: string[], blocks: number, bytes: number }>('POST', '/api/v0/car/import', {}, { stream: createReadStream(file), length: size })
  if (g.json) printJson(result)
  else printLines(...result.roots.map(r => `imported ${r}`), `${result.blocks} blocks`)
}
