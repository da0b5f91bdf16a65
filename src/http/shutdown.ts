/**
 * Graceful shutdown of the HTTP side. Every upload registers here; on close
 * the gateway stops taking new uploads (503 + Retry-After, Connection: close),
 * lets the running ones finish within the grace period, then aborts the rest
 * through one AbortSignal that reaches ffmpeg and the upstream POST, and waits
 * for their temp folders to be removed and their answers to be written.
 */
import { setMaxListeners } from 'node:events';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { aborted, GatewayError } from '../errors.js';

/** The abort reason used on hard close, so handlers can answer 503 rather than "aborted". */
class ShutdownAbort extends Error {
  constructor() {
    super('The gateway is shutting down');
    this.name = 'ShutdownAbort';
  }
}

const shuttingDown = (): GatewayError =>
  new GatewayError('BUSY', 'The gateway is shutting down; retry on another instance or later', {
    retryAfterSeconds: 5,
    headers: { Connection: 'close' },
  });

export class Lifecycle {
  private readonly controller = new AbortController();
  private readonly active = new Set<Promise<void>>();
  private closingFlag = false;
  private readonly idleWaiters = new Set<() => void>();

  constructor() {
    // Every request in flight listens here (app.ts removes its listener when it ends): as many listeners as
    // concurrent uploads is the design, not a leak, so Node's warning after 10 would be a false alarm.
    setMaxListeners(0, this.controller.signal);
  }

  /** Aborted on hard close; combine it with each request's own signal. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get closing(): boolean {
    return this.closingFlag;
  }

  get inflight(): number {
    return this.active.size;
  }

  /**
   * Registers one request. The entry ends when both its handler is done (the
   * returned function is called, after cleanup) and its response is closed.
   */
  begin(res: Response): () => void {
    let endHandler!: () => void;
    const handlerDone = new Promise<void>((resolve) => {
      endHandler = resolve;
    });
    const responseClosed = new Promise<void>((resolve) => {
      if (res.closed) resolve();
      else res.once('close', () => resolve());
    });
    const entry: Promise<void> = Promise.all([handlerDone, responseClosed]).then(() => {
      this.active.delete(entry);
      if (this.active.size === 0) for (const wake of this.idleWaiters) wake();
    });
    this.active.add(entry);
    return endHandler;
  }

  /**
   * Mounted first: once closing, every response closes its connection, /healthz
   * still answers, /readyz and everything else answer 503 (load balancers and
   * clients move on).
   */
  middleware(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      if (!this.closingFlag) {
        next();
        return;
      }
      res.set('Connection', 'close');
      if (req.path === '/healthz') {
        next();
        return;
      }
      next(shuttingDown());
    };
  }

  /**
   * The error to answer for a request whose signal fired: 503 for the hard
   * close; "aborted" (logged as such, not as a failure) when the client left,
   * whatever the interrupted step threw; else the error itself.
   */
  translate(error: unknown, signal: AbortSignal): unknown {
    if (!signal.aborted) return error;
    if (signal.reason instanceof ShutdownAbort) return shuttingDown();
    return error instanceof GatewayError && error.code === 'ABORTED' ? error : aborted();
  }

  /** Stop taking uploads. */
  beginClose(): void {
    this.closingFlag = true;
  }

  /** Aborts everything still running. */
  abortAll(): void {
    if (!this.controller.signal.aborted) this.controller.abort(new ShutdownAbort());
  }

  /** Resolves true when nothing is in flight, false when the time is up first. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.active.size === 0) return true;
    return new Promise<boolean>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.idleWaiters.delete(wake);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(wake);
        resolve(this.active.size === 0);
      }, timeoutMs);
      timer.unref();
      this.idleWaiters.add(wake);
    });
  }
}
