#!/usr/bin/env node
import '../node/polyfills.js'
import { main } from './main.js'

process.exitCode = await main(process.argv)
