/**
 * The emulator's own endpoints under /emulator: health, what was received,
 * fault programming and request counters. When the emulator has credentials,
 * these need them too (app.ts).
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import express, { type Router } from 'express';
import { z } from 'zod';
import { badRequest, GatewayError } from '../errors.js';
import { describeIssues } from '../imagicle/schema.js';
import type { FaultInjector, FaultInput } from './faults.js';
import { READ_REFUSALS, type ReadAccess } from './read-routes.js';
import { sendError } from './respond.js';
import type { EmulatorStats } from './stats.js';
import type { RecordingStore } from './store.js';

export interface AdminDeps {
  store: RecordingStore;
  faults: FaultInjector;
  stats: EmulatorStats;
  reads: ReadAccess;
}

/** `{ "refuse": 403 }` turns the read endpoints off with that status; `{ "refuse": null }` turns them back on. */
const readsSchema = z.strictObject({
  refuse: z.union([z.null(), ...READ_REFUSALS.map((status) => z.literal(status))]),
});

const notFound = (what: string): GatewayError => new GatewayError('NOT_FOUND', `${what} not found`);

export function createAdminRouter({ store, faults, stats, reads }: AdminDeps): Router {
  const router = express.Router();

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok', recordings: store.list().length });
  });

  router.get('/recordings', (_req, res) => {
    res.json(store.list());
  });

  router.delete('/recordings', async (_req, res) => {
    await store.clear();
    res.status(204).end();
  });

  router.get('/recordings/:id', (req, res) => {
    const recording = store.get(req.params.id);
    if (!recording) return sendError(res, notFound('Recording'));
    res.json(recording);
  });

  router.get('/recordings/:id/audio', async (req, res) => {
    const recording = store.get(req.params.id);
    const file = store.audioPath(req.params.id);
    if (!recording || !file) return sendError(res, notFound('Recording'));
    res.writeHead(200, { 'Content-Type': recording.contentType, 'Content-Length': String(recording.bytes) });
    await pipeline(createReadStream(file), res).catch(() => res.destroy());
  });

  router.get('/faults', (_req, res) => {
    res.json(faults.pending());
  });

  router.post('/faults', express.json({ limit: '1mb' }), (req, res) => {
    try {
      faults.add(req.body as FaultInput | FaultInput[]);
    } catch (error) {
      if (error instanceof z.ZodError) return sendError(res, badRequest(`Invalid fault: ${describeIssues(error)}`));
      throw error;
    }
    res.status(201).json(faults.pending());
  });

  router.delete('/faults', (_req, res) => {
    faults.clear();
    res.status(204).end();
  });

  router.get('/reads', (_req, res) => {
    res.json({ refuse: reads.refused ?? null });
  });

  router.put('/reads', express.json({ limit: '1kb' }), (req, res) => {
    const parsed = readsSchema.safeParse(req.body);
    if (!parsed.success) return sendError(res, badRequest(`Invalid reads setting: ${describeIssues(parsed.error)}`));
    reads.refuse(parsed.data.refuse ?? undefined);
    res.json({ refuse: reads.refused ?? null });
  });

  router.get('/stats', (_req, res) => {
    res.json(stats.snapshot());
  });

  router.delete('/stats', (_req, res) => {
    stats.reset();
    res.status(204).end();
  });

  return router;
}
