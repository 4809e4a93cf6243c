/**
 * Daemon log lines as a person at a terminal reads them: time, level,
 * component, message, then the other fields; what is not a JSON object
 * passes through unchanged. And a real pino logger's line, formatted.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { formatLogLine } from '../../../node/log-format.js'

describe('log lines on a terminal', () => {
  it('time, level, component and message first, then the fields; strings with spaces quoted', () => {
    const time = Date.UTC(2026, 10, 22, 12, 34, 56, 789)
    const line = JSON.stringify({ level: 40, time, pid: 1, hostname: 'h', name: 'shoal', component: 'block-exchange', peer: '12D3KooWabc', why: 'sent corrupt bytes', n: 3, msg: 'peer misbehaved' })
    assert.equal(formatLogLine(line + '\n'), '12:34:56.789 WARN  [block-exchange] peer misbehaved peer=12D3KooWabc why="sent corrupt bytes" n=3\n')
    assert.equal(formatLogLine(JSON.stringify({ level: 30, time, msg: 'daemon ready' })), '12:34:56.789 INFO  daemon ready\n')
  })

  it('never prints a control character: a path or message with ESC or a newline is escaped', () => {
    const out = formatLogLine(JSON.stringify({ level: 30, time: 0, msg: 'two\nlines', path: '/a\u001b[31mred', component: 'x\u001b' }))
    assert.equal(out.split('\n').length, 2, 'one line')
    assert.ok(!out.includes('\u001b'), out)
    assert.match(out, /path="\/a\\u001b\[31mred"/)
  })

  it('passes through what is not a JSON object', () => {
    assert.equal(formatLogLine('not json\n'), 'not json\n')
    assert.equal(formatLogLine('[1,2]'), '[1,2]\n')
    assert.equal(formatLogLine('null\n'), 'null\n')
  })

  it('formats what pino writes, with one component per line', () => {
    const out: string[] = []
    const sink = new Writable({ write (chunk, _enc, done) { out.push(formatLogLine(chunk.toString())); done() } })
    const logger = pino({ name: 'shoal', level: 'info' }, sink)
    logger.child({ component: 'blocks' }).info({ cid: 'bafy', bytes: 10 }, 'corrupt local copy replaced')
    assert.equal(out.length, 1)
    assert.match(out[0], /^\d\d:\d\d:\d\d\.\d{3} INFO  \[blocks\] corrupt local copy replaced cid=bafy bytes=10\n$/)
  })
})
