#!/usr/bin/env node
import '../node/polyfills.js'
import { relaunchDaemon, shouldRelaunch } from './relaunch.js'

if (shouldRelaunch(process.argv)) {
  process.exitCode = await relaunchDaemon()
} else {
  const { main } = await import('./main.js')
  process.exitCode = await main(process.argv)
}
