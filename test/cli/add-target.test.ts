/**
 * Where `shoal add SOURCE --to TO` puts SOURCE (cli/commands/files.ts,
 * `addTarget`): inside a folder it saw, at TO otherwise; a folder that
 * arrived from another node after the command began is joined, not gone
 * into, when what is added is a folder.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { addTarget } from '../../cli/commands/files.js'

const DIR = { name: 'photos', isDir: true }
const FILE = { name: 'a.jpg', isDir: false }

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

  it('a folder another node made after the command began: a folder added joins it, a file still goes inside', () => {
    assert.equal(addTarget(DIR, '/d', { type: 'dir', arrivedAfterStart: true }), '/d')
    assert.equal(addTarget(FILE, '/d', { type: 'dir', arrivedAfterStart: true }), '/d/a.jpg')
  })
})
