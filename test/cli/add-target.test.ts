/**
 * Where `shoal add SOURCE --to TO` puts SOURCE (cli/commands/files.ts,
 * `addTarget`): inside a folder it saw, at TO otherwise; a folder that
 * arrived from another node after the command began is not gone into (a
 * folder added joins it; a file is kept beside it by the daemon's add).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { addTarget } from '../../cli/commands/files.js'

const DIR = { name: 'photos' }
const FILE = { name: 'a.jpg' }

describe('add --to: where the source goes', () => {
  it('without --to, at the root under its name', () => {
    assert.equal(addTarget(DIR, undefined, undefined), '/photos')
  })

  it('inside a folder that was there, or a path ending with /', () => {
    assert.equal(addTarget(DIR, '/d', { type: 'dir' }), '/d/photos')
    assert.equal(addTarget(FILE, '/d', { type: 'dir' }), '/d/a.jpg')
    assert.equal(addTarget(DIR, '/d/', undefined), '/d/photos')
    assert.equal(addTarget(DIR, '/', undefined), '/photos')
  })

  it('at the path itself when nothing or a file is there', () => {
    assert.equal(addTarget(DIR, '/d', undefined), '/d')
    assert.equal(addTarget(FILE, '/d', undefined), '/d')
    assert.equal(addTarget(FILE, '/d', { type: 'file' }), '/d')
    assert.equal(addTarget(FILE, '/d', { type: 'file', arrivedAfterStart: true }), '/d')
  })

  it('a folder another node made after the command began: a folder added joins it, a file is added at the path (kept beside the folder, its conflict copy)', () => {
    assert.equal(addTarget(DIR, '/d', { type: 'dir', arrivedAfterStart: true }), '/d')
    assert.equal(addTarget(FILE, '/d', { type: 'dir', arrivedAfterStart: true }), '/d')
  })
})
