/**
 * The import/watch state store: SQLite (better-sqlite3), one database per
 * `--state` folder, written synchronously (WAL, synchronous=FULL), so that a
 * `kill -9` at any point leaves a state the next run can trust.
 *
 * - files: one row per source file, keyed by its path; size and mtime say
 *   whether it is still the same file, and the dedup key (pbxCallId + audio
 *   hash, as for HTTP uploads) recognises the same recording under another path.
 * - parts: per part, "sending" is written before the attempt starts and
 *   "sent" after Imagicle's 2xx. A part found "sending" by a later run was
 *   interrupted in the window between the two: it is sent again and counted
 *   as a possible duplicate.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

type FileStatus = 'pending' | 'delivering' | 'delivered' | 'failed';

export interface FileRow {
  path: string;
  size: number;
  mtimeMs: number;
  dedupKey: string | null;
  status: FileStatus;
  parts: number | null;
  ids: string[];
  duration: string | null;
  decision: string | null;
  error: string | null;
  /** ISO 8601: the row's last change (the start of its last attempt while one is under way). */
  updatedAt: string;
  /** `--gateway`: the gateway's job that holds the file (followed by a rerun instead of uploading again). */
  jobId: string | null;
}

interface RawFileRow {
  path: string;
  size: number;
  mtime_ms: number;
  dedup_key: string | null;
  status: FileStatus;
  parts: number | null;
  ids: string | null;
  duration: string | null;
  decision: string | null;
  error: string | null;
  updated_at: string;
  job_id: string | null;
}

export type PartState = 'sending' | 'sent' | 'pending' | 'ambiguous';

export class StateLockedError extends Error {}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS files (
  path TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  mtime_ms INTEGER NOT NULL,
  dedup_key TEXT,
  status TEXT NOT NULL,
  parts INTEGER,
  ids TEXT,
  duration TEXT,
  decision TEXT,
  error TEXT,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_dedup ON files(dedup_key);
CREATE TABLE IF NOT EXISTS parts (
  path TEXT NOT NULL,
  idx INTEGER NOT NULL,
  count INTEGER NOT NULL,
  state TEXT NOT NULL,
  answer TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (path, idx)
);
`;

function toRow(raw: RawFileRow): FileRow {
  return {
    path: raw.path,
    size: raw.size,
    mtimeMs: raw.mtime_ms,
    dedupKey: raw.dedup_key,
    status: raw.status,
    parts: raw.parts,
    ids: raw.ids ? (JSON.parse(raw.ids) as string[]) : [],
    duration: raw.duration,
    decision: raw.decision,
    error: raw.error,
    updatedAt: raw.updated_at,
    jobId: raw.job_id,
  };
}

export class StateStore {
  private readonly db: Database.Database;
  private readonly lockFile: string;

  private constructor(dir: string) {
    this.lockFile = path.join(dir, 'lock');
    this.db = new Database(path.join(dir, 'state.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    // Added with --gateway: older state folders gain the column.
    const columns = this.db.prepare('PRAGMA table_info(files)').all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === 'job_id')) this.db.exec('ALTER TABLE files ADD COLUMN job_id TEXT');
  }

  /** Opens (creating) the store; refuses a folder another live process holds. */
  static open(dir: string): StateStore {
    mkdirSync(dir, { recursive: true });
    takeLock(path.join(dir, 'lock'));
    return new StateStore(dir);
  }

  close(): void {
    this.db.close();
    rmSync(this.lockFile, { force: true });
  }

  get(file: string): FileRow | undefined {
    const raw = this.db.prepare('SELECT * FROM files WHERE path = ?').get(file) as RawFileRow | undefined;
    return raw ? toRow(raw) : undefined;
  }

  /** A delivered row of the same recording under another path. */
  deliveredDuplicate(dedupKey: string, file: string): FileRow | undefined {
    const raw = this.db
      .prepare("SELECT * FROM files WHERE dedup_key = ? AND path <> ? AND status = 'delivered' LIMIT 1")
      .get(dedupKey, file) as RawFileRow | undefined;
    return raw ? toRow(raw) : undefined;
  }

  /** Starts (or restarts) a file: a changed file forgets the parts of its earlier content. */
  begin(file: string, size: number, mtimeMs: number, dedupKey: string, sameContent: boolean): void {
    const now = new Date().toISOString();
    this.db.transaction(() => {
      if (!sameContent) this.db.prepare('DELETE FROM parts WHERE path = ?').run(file);
      this.db
        .prepare(
          `INSERT INTO files (path, size, mtime_ms, dedup_key, status, updated_at) VALUES (?, ?, ?, ?, 'pending', ?)
           ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, dedup_key = excluded.dedup_key,
             status = 'pending', error = NULL, updated_at = excluded.updated_at`,
        )
        .run(file, size, mtimeMs, dedupKey, now);
    })();
  }

  /**
   * `--gateway`: a file handed to a gateway (its job, once the gateway named it; null before). A changed file
   * forgets the job of its earlier content.
   */
  track(file: string, size: number, mtimeMs: number, jobId: string | null): void {
    this.db
      .prepare(
        `INSERT INTO files (path, size, mtime_ms, status, job_id, updated_at) VALUES (?, ?, ?, 'pending', ?, ?)
         ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, status = 'pending',
           job_id = excluded.job_id, error = NULL, updated_at = excluded.updated_at`,
      )
      .run(file, size, mtimeMs, jobId, new Date().toISOString());
  }

  /** The same content under a new size/mtime key (touched, copied back): keeps its status. */
  rekey(file: string, size: number, mtimeMs: number): void {
    this.db
      .prepare('UPDATE files SET size = ?, mtime_ms = ?, updated_at = ? WHERE path = ?')
      .run(size, mtimeMs, new Date().toISOString(), file);
  }

  partState(file: string, index: number): { state: PartState; count: number } | undefined {
    return this.db.prepare('SELECT state, count FROM parts WHERE path = ? AND idx = ?').get(file, index) as
      { state: PartState; count: number } | undefined;
  }

  /** Parts already sent for the file, with the part count they were cut into. */
  sentParts(file: string): Array<{ idx: number; count: number; answer: string | null }> {
    return this.db
      .prepare("SELECT idx, count, answer FROM parts WHERE path = ? AND state = 'sent' ORDER BY idx")
      .all(file) as Array<{
      idx: number;
      count: number;
      answer: string | null;
    }>;
  }

  markSending(file: string, index: number, count: number): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO parts (path, idx, count, state, attempts) VALUES (?, ?, ?, 'sending', 1)
           ON CONFLICT(path, idx) DO UPDATE SET count = excluded.count, state = 'sending', attempts = attempts + 1`,
        )
        .run(file, index, count);
      this.db
        .prepare("UPDATE files SET status = 'delivering', parts = ?, updated_at = ? WHERE path = ?")
        .run(count, new Date().toISOString(), file);
    })();
  }

  markPart(file: string, index: number, state: Exclude<PartState, 'sending'>, answer: string | undefined): void {
    this.db
      .prepare('UPDATE parts SET state = ?, answer = ? WHERE path = ? AND idx = ?')
      .run(state, answer ?? null, file, index);
  }

  finish(
    file: string,
    status: 'delivered' | 'failed',
    details: {
      parts?: number | undefined;
      ids?: string[] | undefined;
      duration?: string | undefined;
      decision?: string | undefined;
      error?: string | undefined;
    },
  ): void {
    this.db
      .prepare(
        'UPDATE files SET status = ?, parts = COALESCE(?, parts), ids = ?, duration = ?, decision = ?, error = ?, updated_at = ? WHERE path = ?',
      )
      .run(
        status,
        details.parts ?? null,
        JSON.stringify(details.ids ?? []),
        details.duration ?? null,
        details.decision ?? null,
        details.error ?? null,
        new Date().toISOString(),
        file,
      );
  }

  /**
   * Not delivered for a transient cause (Imagicle down or busy): the file stays pending, so that a plain rerun
   * takes it again; the error says why it waits.
   */
  wait(
    file: string,
    details: {
      parts?: number | undefined;
      duration?: string | undefined;
      decision?: string | undefined;
      error: string;
    },
  ): void {
    this.db
      .prepare(
        "UPDATE files SET status = 'pending', parts = COALESCE(?, parts), duration = COALESCE(?, duration), decision = COALESCE(?, decision), error = ?, updated_at = ? WHERE path = ?",
      )
      .run(
        details.parts ?? null,
        details.duration ?? null,
        details.decision ?? null,
        details.error,
        new Date().toISOString(),
        file,
      );
  }

  /** Parts whose attempt was cut short by a crash: the documented window. */
  interruptedParts(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM parts WHERE state = 'sending'").get() as { n: number }).n;
  }

  forget(file: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM parts WHERE path = ?').run(file);
      this.db.prepare('DELETE FROM files WHERE path = ?').run(file);
    })();
  }
}

/** One process per state folder: a lock file with its pid; a dead holder's lock is taken over. */
function takeLock(file: string): void {
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new StateLockedError(`the state folder ${path.dirname(file)} is in use by process ${pid}`);
      }
      rmSync(file, { force: true });
    }
  }
  throw new StateLockedError(`cannot lock the state folder ${path.dirname(file)}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
