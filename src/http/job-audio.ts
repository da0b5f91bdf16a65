/**
 * The console's audio player: a job's files, served to the job's owner only,
 * with range requests (express's sendFile answers `Range` with 206), and only
 * while the job still holds them:
 *   GET /v1/jobs/{id}/audio/output?part=N   a converted part (until Imagicle accepted it)
 *   GET /v1/jobs/{id}/audio/input           the upload as it came (until it is converted)
 * Mounted beside the jobs router (app.ts), behind the same access control and the same owner check.
 */
import express, { type Router } from 'express';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { GatewayError } from '../errors.js';
import type { DeliveryService } from '../delivery/service.js';
import type { JobRecord } from '../delivery/job.js';
import { CONTENT_TYPE, type Container } from '../media/plan.js';
import { mayAccess, requestOwner } from './owner.js';
import { openSource } from '../source-reference.js';

const notFound = (message: string): GatewayError => new GatewayError('NOT_FOUND', message);

/** Browsers play WAV and MP3; the input is typed by its extension, as well as it can be. */
const INPUT_TYPES: Readonly<Record<string, string>> = {
  wav: 'audio/wav',
  wave: 'audio/wav',
  mp3: 'audio/mpeg',
  ogg: 'audio/ogg',
  oga: 'audio/ogg',
  opus: 'audio/ogg',
  flac: 'audio/flac',
  m4a: 'audio/mp4',
  aac: 'audio/aac',
  webm: 'audio/webm',
};

export function createJobAudioRouter(delivery: Pick<DeliveryService, 'spool'>): Router {
  const { spool } = delivery;
  const router = express.Router();

  const ownedJob = (req: express.Request, res: express.Response): JobRecord => {
    const raw: unknown = req.params.id;
    const id = typeof raw === 'string' ? raw : '';
    const job = spool.get(id);
    if (!job || !mayAccess(requestOwner(req, res), job.owner)) throw notFound(`No job ${id}`);
    return job;
  };

  /** A file of the job's folder, or a 404 that says why the audio is not there any more. */
  const fileOf = (job: JobRecord, name: string, gone: string): string => {
    const file = path.join(spool.jobDir(job.id), name);
    if (path.relative(spool.jobDir(job.id), file).startsWith('..')) throw notFound(gone);
    if (!existsSync(file)) throw notFound(gone);
    return file;
  };

  const send = (res: express.Response, file: string, type: string): void => {
    res.set('Cache-Control', 'private, no-store').type(type);
    // Ranges (206), conditional requests and the length come from send(); dotfiles are not a concern in a job folder.
    res.sendFile(file, { acceptRanges: true, cacheControl: false });
  };

  router.get('/:id/audio/output', (req, res) => {
    const job = ownedJob(req, res);
    const wanted = typeof req.query.part === 'string' ? Number(req.query.part) : 1;
    const part = job.parts.find((p) => p.index === wanted);
    if (!part) {
      throw notFound(
        job.parts.length === 0
          ? `Job ${job.id} has not been converted yet: no output to play`
          : `Job ${job.id} has no part ${String(req.query.part)} (parts 1 to ${job.parts.length})`,
      );
    }
    const file = fileOf(
      job,
      part.file,
      `Part ${part.index} of job ${job.id} was delivered to Imagicle and its audio deleted from the gateway`,
    );
    const container: Container = part.filename.toLowerCase().endsWith('.mp3') ? 'mp3' : 'wav';
    send(res, file, CONTENT_TYPE[container]);
  });

  router.get('/:id/audio/input', async (req, res) => {
    const job = ownedJob(req, res);
    const input = job.inputs.attachment;
    const type = INPUT_TYPES[input.extension.toLowerCase()] ?? 'application/octet-stream';
    if (input.source) {
      // A watched folder's file, read where it is: only while it is still the recording that was taken.
      const opened = await openSource(input.source).catch((error: unknown) => {
        if (error instanceof GatewayError) throw notFound(error.message);
        throw error;
      });
      res.once('close', () => void opened.close());
      send(res, opened.path, type);
      return;
    }
    const file = fileOf(
      job,
      input.file,
      `The upload of job ${job.id} is no longer kept: the gateway keeps it only until it is converted`,
    );
    send(res, file, type);
  });

  return router;
}
