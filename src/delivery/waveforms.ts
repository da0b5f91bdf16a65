/**
 * Waveform pictures of a job's output, one PNG per channel, for the console.
 *
 * Drawn on demand from the audio the store still holds (the spool, or BLOB_DIR
 * in the distributed mode, where any api process draws and serves them): in Node from the
 * WAV's samples (media/waveform-wav.ts: the gateway's WAV outputs, no child
 * process), else by ffmpeg (media/waveform.ts: MP3 outputs); either way
 * through the process slots like every other run, and cached in the job's
 * folder (waveform-<channel>.png, kept until the job is removed).
 * A delivered job's audio is deleted right away, so with
 * WAVEFORMS_ON_DELIVERY=true (the default) the pictures of part 1 are drawn
 * from a hard link to its audio taken just before it goes; otherwise a
 * delivered job has none. That drawing happens after the caller has its
 * answer (it reads the whole part: a tenth of a second of CPU for an hour of
 * stereo PCM, more for an MP3, which ffmpeg decodes), through the process slots;
 * a GET meanwhile waits for it.
 */
import { randomBytes } from 'node:crypto';
import { access, link, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { FfmpegBinaries } from '../media/ffmpeg-tools.js';
import { runWithProcessGate, type ProcessGate } from '../media/process.js';
import { drawWaveforms } from '../media/waveform.js';
import { drawWavWaveforms } from '../media/waveform-wav.js';
import type { JobRecord, SpooledPart } from './job.js';

const DRAW_TIMEOUT_MS = 60_000;

/** No admission (no process slots configured). */
const OPEN_GATE: ProcessGate = { acquire: () => Promise.resolve(() => undefined) };

/**
 * Where pictures are kept and drawn: each job's folder (the spool's, or BLOB_DIR's shared by every process in
 * the distributed mode), and a folder on the same file system for temp files, which a crash may leave behind
 * (the spool sweeps them when it opens; the queue's retention pass, when they are old).
 */
export interface PictureFolders {
  jobDir(id: string): string;
  readonly tempDir: string;
}

export interface WaveformOptions {
  onDelivery: boolean;
  /** Admission through the process slots (by audio size); none: unlimited. */
  gateFor?: ((bytes: number) => ProcessGate) | undefined;
}

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

export class JobWaveforms {
  private readonly drawing = new Map<string, Promise<void>>();

  constructor(
    private readonly folders: PictureFolders,
    private readonly bins: FfmpegBinaries,
    private readonly options: WaveformOptions,
    private readonly log: Logger,
  ) {}

  fileFor(jobId: string, channel: number): string {
    return path.join(this.folders.jobDir(jobId), `waveform-${channel}.png`);
  }

  /** The cached picture of one channel, drawn now when missing and the audio is still there. */
  async picture(job: JobRecord, channel: number, signal: AbortSignal | undefined): Promise<string> {
    const channels = job.report?.output.channels;
    if (channels === undefined) throw gone(`Job ${job.id} has not been converted yet: it has no waveform`, 404);
    if (!Number.isInteger(channel) || channel < 0 || channel >= channels) {
      throw gone(
        `Job ${job.id} has ${channels} channel${channels === 1 ? '' : 's'} (0-based); there is no channel ${channel}`,
        404,
      );
    }
    const file = this.fileFor(job.id, channel);
    if (await exists(file)) return file;
    // Being drawn from a delivered part (keep()): its audio may already be gone from the job's folder.
    await this.drawing.get(job.id)?.catch(() => undefined);
    if (await exists(file)) return file;
    const part = job.parts.find((p) => p.state !== 'delivered');
    if (!part || !(await exists(path.join(this.folders.jobDir(job.id), part.file)))) {
      throw gone(`The audio of job ${job.id} is no longer kept, and no waveform was drawn while it was`, 410);
    }
    const gate = this.options.gateFor?.(part.bytes);
    const draw = (): Promise<void> => this.draw(job, part, channels, signal);
    try {
      await (gate ? runWithProcessGate(gate, draw) : draw());
    } catch (error) {
      // Delivered (and its audio deleted) while the picture was being drawn.
      if (!(await exists(path.join(this.folders.jobDir(job.id), part.file)))) {
        throw gone(`The audio of job ${job.id} was delivered and deleted while its waveform was drawn`, 410);
      }
      throw error;
    }
    return file;
  }

  /**
   * Before a delivered part's audio is deleted: keeps a hard link to it (instant, no copy) and draws part 1's
   * pictures from that in the background, through the process slots (best effort, never fails or delays delivery).
   * The link and the pictures being drawn are temp files in the temp folder (same file system, outside the job's
   * folder): a crash leaves nothing that is not swept.
   */
  async keep(job: JobRecord, part: SpooledPart, _signal: AbortSignal | undefined): Promise<void> {
    const channels = job.report?.output.channels;
    if (!this.options.onDelivery || part.index !== 1 || channels === undefined) return;
    if (this.drawing.has(job.id) || (await exists(this.fileFor(job.id, channels - 1)))) return;
    const source = this.tempName(job.id, 'audio');
    try {
      await link(path.join(this.folders.jobDir(job.id), part.file), source);
    } catch (error) {
      this.log.warn({ jobId: job.id, err: error }, 'waveform not drawn');
      return;
    }
    // Its own admission, never the delivering request's (which may be gone by the time it runs).
    const gate = this.options.gateFor?.(part.bytes) ?? OPEN_GATE;
    const draw = (): Promise<void> => this.drawFrom(job.id, source, channels, this.closing.signal);
    const work = runWithProcessGate(gate, draw)
      .catch((error: unknown) => this.log.warn({ jobId: job.id, err: error }, 'waveform not drawn'))
      .finally(() => rm(source, { force: true }));
    this.track(job.id, work);
  }

  /** Stops the drawings still running (shutdown) and waits for them. */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([...this.drawing.values()]);
  }

  private readonly closing = new AbortController();

  private draw(job: JobRecord, part: SpooledPart, channels: number, signal: AbortSignal | undefined): Promise<void> {
    const running = this.drawing.get(job.id);
    if (running) return running;
    return this.track(
      job.id,
      this.drawFrom(job.id, path.join(this.folders.jobDir(job.id), part.file), channels, signal),
    );
  }

  private track(jobId: string, work: Promise<void>): Promise<void> {
    const tracked = work.finally(() => {
      if (this.drawing.get(jobId) === tracked) this.drawing.delete(jobId);
    });
    this.drawing.set(jobId, tracked);
    return tracked;
  }

  /** A temp file's name in the temp folder (durable.ts isTempName: swept after a crash). */
  private tempName(jobId: string, what: string): string {
    return path.join(this.folders.tempDir, `.${jobId}-${what}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  private async drawFrom(
    jobId: string,
    audio: string,
    channels: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const temps = Array.from({ length: channels }, (_, c) => this.tempName(jobId, `waveform-${c}`));
    try {
      await drawPictures(this.bins, audio, channels, temps, { timeoutMs: DRAW_TIMEOUT_MS, signal });
      for (let c = 0; c < channels; c++) await rename(temps[c]!, this.fileFor(jobId, c));
    } finally {
      await Promise.all(temps.map((t) => rm(t, { force: true })));
    }
  }
}

/**
 * Draws one picture per channel of `audio` into `outputs`: in Node when it is a WAV waveform-wav.ts reads,
 * else with ffmpeg. Says which drew them.
 */
export async function drawPictures(
  bins: FfmpegBinaries,
  audio: string,
  channels: number,
  outputs: readonly string[],
  options: { timeoutMs: number; signal: AbortSignal | undefined },
): Promise<'node' | 'ffmpeg'> {
  if (await drawWavWaveforms(audio, outputs, options)) return 'node';
  await drawWaveforms(bins, { path: audio, hint: undefined, channels }, outputs, options);
  return 'ffmpeg';
}

function gone(message: string, status: 404 | 410): GatewayError {
  return new GatewayError(status === 410 ? 'GONE' : 'NOT_FOUND', message);
}
