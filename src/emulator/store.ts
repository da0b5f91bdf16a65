/**
 * Accepted recordings: `<dir>/<id>.<wav|mp3>` plus a `<dir>/<id>.json` sidecar,
 * indexed in memory in arrival order. Sidecars already in the folder are
 * loaded on open, so a restarted emulator still lists what it received.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { storedRecordingSchema, type NewRecording, type StoredRecording } from './recording.js';

const TEMP_PREFIX = '.upload-';

export class RecordingStore {
  private readonly recordings = new Map<string, StoredRecording>();

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<RecordingStore> {
    await mkdir(dir, { recursive: true });
    const store = new RecordingStore(dir);
    await store.load();
    return store;
  }

  /** A fresh path in the storage folder for an upload in progress; the caller removes it on failure. */
  tempPath(): string {
    return path.join(this.dir, `${TEMP_PREFIX}${randomUUID()}.part`);
  }

  /** Moves a received file into the store and records it. */
  async add(tempPath: string, recording: NewRecording): Promise<StoredRecording> {
    const id = randomUUID();
    const stored: StoredRecording = { id, receivedAt: new Date().toISOString(), ...recording };
    const sidecar = this.sidecarPath(id);
    await writeFile(`${sidecar}.tmp`, `${JSON.stringify(stored, null, 2)}\n`, { flag: 'wx' });
    try {
      await rename(tempPath, this.audioFile(id, stored.format.container));
      await rename(`${sidecar}.tmp`, sidecar);
    } catch (error) {
      await Promise.all([
        rm(`${sidecar}.tmp`, { force: true }),
        rm(this.audioFile(id, stored.format.container), { force: true }),
      ]);
      throw error;
    }
    this.recordings.set(id, stored);
    return stored;
  }

  list(): StoredRecording[] {
    return [...this.recordings.values()];
  }

  get(id: string): StoredRecording | undefined {
    return this.recordings.get(id);
  }

  audioPath(id: string): string | undefined {
    const recording = this.recordings.get(id);
    return recording ? this.audioFile(id, recording.format.container) : undefined;
  }

  async clear(): Promise<void> {
    const ids = [...this.recordings.keys()];
    this.recordings.clear();
    await Promise.all(
      ids
        .flatMap((id) => [this.sidecarPath(id), this.audioFile(id, 'wav'), this.audioFile(id, 'mp3')])
        .map((p) => rm(p, { force: true })),
    );
  }

  private audioFile(id: string, container: 'wav' | 'mp3'): string {
    return path.join(this.dir, `${id}.${container}`);
  }

  private sidecarPath(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  private async load(): Promise<void> {
    const names = await readdir(this.dir);
    // Leftovers of uploads interrupted by a crash.
    await Promise.all(
      names
        .filter((n) => n.startsWith(TEMP_PREFIX) || n.endsWith('.json.tmp'))
        .map((n) => rm(path.join(this.dir, n), { force: true })),
    );
    const loaded: StoredRecording[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      try {
        const parsed = storedRecordingSchema.safeParse(JSON.parse(await readFile(path.join(this.dir, name), 'utf8')));
        if (parsed.success && `${parsed.data.id}.json` === name) loaded.push(parsed.data);
      } catch {
        // Not one of ours: leave it alone.
      }
    }
    loaded.sort((a, b) => a.receivedAt.localeCompare(b.receivedAt));
    for (const recording of loaded) this.recordings.set(recording.id, recording);
  }
}
