/**
 * The emulator's express app: Imagicle's upload route plus /emulator/*.
 * Every error, including unknown routes, answers Imagicle's `{ reason, message }`.
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { GatewayError, type ErrorCode } from '../errors.js';
import { createAdminRouter } from './admin-routes.js';
import { isAuthorized, type Credentials } from './auth.js';
import { unauthorized } from './import-recording.js';
import type { FaultInjector } from './faults.js';
import { sendError } from './respond.js';
import { createReadRouter, type ReadAccess } from './read-routes.js';
import type { EmulatorStats } from './stats.js';
import type { RecordingStore } from './store.js';
import { createUploadHandler, UPLOAD_PATH } from './upload-route.js';

export interface EmulatorAppDeps {
  store: RecordingStore;
  faults: FaultInjector;
  stats: EmulatorStats;
  logger: Logger;
  credentials: Credentials | undefined;
  maxFileBytes: number;
  /** Whether the read endpoints answer (ReadAccess.refuse turns them off). */
  reads: ReadAccess;
}

function statusOf(error: unknown): number {
  if (typeof error === 'object' && error !== null && 'status' in error && typeof error.status === 'number') {
    return error.status;
  }
  return 500;
}

/** The error table's code for an HTTP layer's status (body parsers, express): the emulator answers in Imagicle's shape. */
function codeForStatus(status: number): ErrorCode {
  if (status === 413) return 'REQUEST_TOO_LARGE';
  if (status === 404) return 'NOT_FOUND';
  if (status === 405) return 'METHOD_NOT_ALLOWED';
  return status >= 400 && status < 500 ? 'BAD_REQUEST' : 'INTERNAL';
}

export function createEmulatorApp(deps: EmulatorAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  const upload = createUploadHandler(deps);
  app.post(UPLOAD_PATH, (req, res) => upload(req, res));
  app.use(UPLOAD_PATH, createReadRouter(deps));
  app.all(UPLOAD_PATH, (_req, res) => {
    res.setHeader('Allow', 'GET, POST');
    sendError(res, new GatewayError('METHOD_NOT_ALLOWED', 'Method not allowed'));
  });
  // What the emulator received is other people's calls: with credentials configured, its own routes need them too.
  app.use('/emulator', (req: Request, res: Response, next: NextFunction) => {
    if (isAuthorized(req.get('authorization'), deps.credentials)) {
      next();
      return;
    }
    sendError(res, unauthorized());
  });
  app.use('/emulator', createAdminRouter(deps));

  app.use((req: Request, res: Response) => {
    sendError(res, new GatewayError('NOT_FOUND', `No route for ${req.method} ${req.path}`));
  });

  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = statusOf(error);
    if (status >= 500) deps.logger.error({ err: error }, 'emulator: request failed');
    const message = status < 500 && error instanceof Error ? error.message : 'Internal error in the emulator';
    sendError(res, new GatewayError(codeForStatus(status), message));
  });

  return app;
}
