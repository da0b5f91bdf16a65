/**
 * `GET /fw/Apps/Recorder/WebAPI/Recordings` (list) and `GET …/Recordings/{id}`
 * (detail), with the uploads' credentials. `ReadAccess` turns them off the
 * way a real server would (401/403 for a user without "Call Recording Base
 * Access", 404/405 for an older server without them), for the fallback tests.
 */
import express, { type Request, type Response, type Router } from 'express';
import { GatewayError } from '../errors.js';
import { isAuthorized, type Credentials } from './auth.js';
import { unauthorized } from './import-recording.js';
import { listRecordings, recordingDetail } from './reads.js';
import { sendError, sendJson } from './respond.js';
import type { RecordingStore } from './store.js';

export const READ_REFUSALS = [401, 403, 404, 405] as const;
export type ReadRefusal = (typeof READ_REFUSALS)[number];

/** Whether reads are answered, and if not, with which status. */
export class ReadAccess {
  constructor(private refusal: ReadRefusal | undefined = undefined) {}

  refuse(status: ReadRefusal | undefined): void {
    this.refusal = status;
  }

  get refused(): ReadRefusal | undefined {
    return this.refusal;
  }
}

export interface ReadDeps {
  store: RecordingStore;
  credentials: Credentials | undefined;
  reads: ReadAccess;
}

function refuse(res: Response, status: ReadRefusal): void {
  if (status === 401) return sendError(res, unauthorized());
  if (status === 403) return sendJson(res, 403, { reason: 0, message: 'The user has no Call Recording Base Access' });
  if (status === 405) {
    res.setHeader('Allow', 'POST');
    return sendError(res, new GatewayError('METHOD_NOT_ALLOWED', 'Method not allowed'));
  }
  sendError(res, new GatewayError('NOT_FOUND', 'No such endpoint'));
}

export function createReadRouter({ store, credentials, reads }: ReadDeps): Router {
  const router = express.Router();
  const gate = (req: Request, res: Response): boolean => {
    if (reads.refused !== undefined) {
      refuse(res, reads.refused);
      return false;
    }
    if (!isAuthorized(req.get('authorization'), credentials)) {
      sendError(res, unauthorized());
      return false;
    }
    return true;
  };

  router.get('/', (req, res) => {
    if (!gate(req, res)) return;
    try {
      sendJson(res, 200, listRecordings(store.list(), req.query));
    } catch (error) {
      if (error instanceof GatewayError) return sendError(res, error);
      throw error;
    }
  });

  router.get('/:id', (req, res) => {
    if (!gate(req, res)) return;
    const detail = recordingDetail(store.list(), req.params.id);
    if (!detail) return sendError(res, new GatewayError('NOT_FOUND', 'Recording not found'));
    sendJson(res, 200, detail);
  });

  return router;
}
