/**
 * `POST /fw/Apps/Recorder/WebAPI/Recordings`: takes the next fault, if any,
 * then imports the recording and answers 201 with its id as a JSON string,
 * or Imagicle's error body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { answerWithFault } from './fault-response.js';
import { replacesImport, type FaultInjector } from './faults.js';
import { importRecording, type ImportSettings } from './import-recording.js';
import { sendError, sendJson, sleep } from './respond.js';
import type { EmulatorStats } from './stats.js';

export const UPLOAD_PATH = '/fw/Apps/Recorder/WebAPI/Recordings';

export interface UploadDeps extends ImportSettings {
  faults: FaultInjector;
  stats: EmulatorStats;
  logger: Logger;
}

function asImagicleError(error: unknown, logger: Logger): GatewayError {
  if (error instanceof GatewayError) return error;
  logger.error({ err: error }, 'emulator: internal error while importing');
  return new GatewayError('INTERNAL', 'Internal error while importing the recording', {
    cause: error,
  });
}

export function createUploadHandler(deps: UploadDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { faults, stats, logger } = deps;
  return async (req, res) => {
    stats.count('requests');
    const fault = faults.take();
    if (fault && replacesImport(fault)) {
      stats.count('faulted');
      logger.info({ fault: { ...fault, body: undefined } }, 'emulator: answering with an injected fault');
      await answerWithFault(req, res, fault);
      return;
    }
    try {
      const recording = await importRecording(req, deps);
      stats.count('accepted');
      logger.info({ id: recording.id, format: recording.format }, 'emulator: recording stored');
      if (fault?.delayMs) await sleep(fault.delayMs);
      if (fault?.afterStore === 'reset') req.socket.destroy();
      // `hang`: no answer at all; the client gives up, or the emulator's close() ends the connection.
      if (fault?.afterStore !== undefined) return;
      sendJson(res, 201, recording.id);
    } catch (error) {
      stats.count('rejected');
      const refusal = asImagicleError(error, logger);
      logger.info({ message: refusal.message }, 'emulator: upload refused');
      if (fault?.delayMs) await sleep(fault.delayMs);
      sendError(res, refusal);
    }
  };
}
