/**
 * Ending read sessions with the read that made them: a read (a `cat`, a
 * CAR export, a gateway request) may open several sessions — its file's,
 * one per directory entry, one on a pin found later — and closes them all
 * once it is over, whether it finished, failed or its consumer stopped.
 *
 * @module
 */
import type { ReadSession } from './api.js'

/** The sessions of one read, closed together. */
export class SessionScope {
  private readonly sessions = new Set<ReadSession>()
  private ended = false

  /**
   * Keep `session` to close with the others; closed at once when the scope
   * is closed already. A session closed by its own user before the scope
   * leaves it (a walk that closes each entry's session when done with it
   * does not keep them all to the end).
   */
  add<S extends ReadSession> (session: S): S {
    if (this.ended) {
      session.close()
      return session
    }
    this.sessions.add(session)
    const close = session.close.bind(session)
    session.close = () => {
      this.sessions.delete(session)
      close()
    }
    return session
  }

  /** Close every session added (and any added later). Closing twice is harmless. */
  close (): void {
    this.ended = true
    for (const session of this.sessions) session.close()
    this.sessions.clear()
  }
}

/** `source`, then `scope` closed: when it is done, failed, or its consumer stopped (`return`). */
export async function * closingAfter<T> (source: AsyncIterable<T>, scope: { close: () => void }): AsyncGenerator<T> {
  try {
    yield * source
  } finally {
    scope.close()
  }
}

/**
 * The stream `open` makes in a scope of its own, made when the stream is
 * first read and closed when it ends, fails or its consumer stops: a stream
 * that is never read opens no session.
 */
export async function * inSessionScope<T> (open: (scope: SessionScope) => AsyncIterable<T>): AsyncGenerator<T> {
  const scope = new SessionScope()
  try {
    yield * open(scope)
  } finally {
    scope.close()
  }
}

/** `fn(session)`, then `session` closed, whatever `fn` did. */
export async function withSession<S extends ReadSession, T> (session: S, fn: (session: S) => Promise<T>): Promise<T> {
  try {
    return await fn(session)
  } finally {
    session.close()
  }
}
