/**
 * A signal during `shoal add DIR` (Ctrl-C, `kill`, a closed terminal)
 * undoes the add, as a failure midway does, instead of leaving a
 * half-added tree under its final name.
 *
 * Why: the add of a folder is many requests (a batch of small files, or one
 * large file, each), each committed on its own; its undo runs in the CLI,
 * which removes what it made. A signal's default action ended the CLI
 * between two requests with no undo: the files of the batches sent so far
 * stayed, on every node (found by a user's test: a SIGTERM to the CLI left
 * 1,024 of 3,000 files).
 *
 * How: the first SIGINT, SIGTERM or SIGHUP is noted, said on stderr, and
 * {@link AddInterrupt.check} throws {@link AddInterruptedError} before the
 * next request, so the request under way ends first (cut, it could commit
 * after the undo's removal and make the files again) and the add's
 * `catch` undoes it. The command then exits as a shell reports the signal
 * (130, 143, 129). A second signal exits at once, leaving what was added;
 * the same signal again within half a second is taken as a repeat of the
 * first (npx forwards a Ctrl-C the terminal also delivers: cli/relaunch.ts).
 *
 * When it applies: from the first request of a folder's add to its end; a
 * crash of the daemon or a SIGKILL of the CLI still leaves what was
 * committed (docs/decisions.md, "A signal undoes an add of a folder").
 *
 * @module
 */
import { AbortedError } from '../node/errors.js'
import { SignalForwarder } from './relaunch.js'
import { SIGNAL_EXIT, SIGNALS } from './staging.js'

/** The add was stopped by a signal; `exitCode` is the shell's for that signal. */
export class AddInterruptedError extends AbortedError {
  override name = 'AddInterruptedError'

  constructor (message: string, readonly exitCode: number) {
    super(message)
  }
}

/** Signals noted while an add of a folder runs; see the module comment. */
export class AddInterrupt {
  private signal: NodeJS.Signals | undefined
  /** One signal delivered twice (a launcher such as npx forwards Ctrl-C, which the terminal also delivers): one request. */
  private readonly repeats = new SignalForwarder()
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (!this.repeats.accept(signal)) return
    if (this.signal !== undefined) process.exit(SIGNAL_EXIT[signal] ?? 1)
    this.signal = signal
    try {
      // under --json, stderr carries JSON lines only (as `notePending`'s notes)
      process.stderr.write(this.options.json === true
        ? JSON.stringify({ note: { signal, stopping: 'the add, once the request under way ends, then undoing it' } }) + '\n'
        : `shoal: ${signal}: stopping the add once the request under way ends, then undoing it (a second signal quits at once, leaving what was added)\n`)
    } catch {
      // a terminal gone (SIGHUP): the undo matters, not the line
    }
  }

  /** @param options.json the command runs under `--json` */
  constructor (private readonly options: { json?: boolean } = {}) {
    for (const s of SIGNALS) process.on(s, this.onSignal)
  }

  /** @throws {AddInterruptedError} once a signal came */
  check (): void {
    if (this.signal !== undefined) throw new AddInterruptedError(`the add was interrupted by ${this.signal}`, SIGNAL_EXIT[this.signal] ?? 1)
  }

  /** Signals take their default action again. */
  stop (): void {
    for (const s of SIGNALS) process.off(s, this.onSignal)
  }
}
