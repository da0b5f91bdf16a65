/**
 * The web console's static files (built by `npm run build` into dist/ui).
 * They hold no data: everything the console shows comes from /v1 and
 * /metrics, behind the access control. No separate server.
 */
import express, { type RequestHandler } from 'express';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Reason } from '../errors.js';

/** dist/ui from both src/http (tests, tsx) and dist/http (npm start). */
const CONSOLE_DIR = fileURLToPath(new URL('../../dist/ui/', import.meta.url));

export function serveConsole(dir = CONSOLE_DIR): RequestHandler {
  const files = express.static(dir, { index: 'index.html', maxAge: 0 });
  return (req, res, next) => {
    if (!existsSync(dir)) {
      res.status(503).json({ reason: Reason.InvalidData, message: 'The console is not built: run npm run build' });
      return;
    }
    // /ui → /ui/, so that the page's relative asset paths resolve.
    if (req.originalUrl === '/ui') {
      res.redirect(301, '/ui/');
      return;
    }
    files(req, res, next);
  };
}
