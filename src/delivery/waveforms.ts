/**
 * Waveform pictures of a job's output, one PNG per channel, for the console.
 *
 * Drawn by ffmpeg (media/waveform.ts) on demand from the audio the spool
 * still holds, through the work queue like every other run, and cached in
 * the job's folder (waveform-<channel>.png, kept until the job is removed).
 * A delivered job's audio is deleted right away, so with
 * WAVEFORMS_ON_DELIVERY=true (the default) the pictures of part 1 are drawn
 * just before its audio goes; otherwise a delivered job has none.
 */
import { access, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { FfmpegBinaries } from '../media/ffmpeg.js';
import { runWithProcessGate, type ProcessGate } from '../media/process.js';
import { drawWaveforms } from '../media/waveform.js';
import type { JobRecord, SpooledPart, Spool } from './spool.js';

const DRAW_TIMEOUT_MS = 60_000;

export interface WaveformOptions {
  onDelivery: boolean;
  /** Admission through the work queue (by audio size); none: unlimited. */
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
    private readonly spool: Spool,
    private readonly bins: FfmpegBinaries,
    private readonly options: WaveformOptions,
    private readonly log: Logger,
  ) {}

  fileFor(jobId: string, channel: number): string {
    return path.join(this.spool.jobDir(jobId), `waveform-${channel}.png`);
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
    const part = job.parts.find((p) => p.state !== 'delivered');
    if (!part || !(await exists(path.join(this.spool.jobDir(job.id), part.file)))) {
      throw gone(`The audio of job ${job.id} is no longer kept, and no waveform was drawn while it was`, 410);
    }
    const gate = this.options.gateFor?.(part.bytes);
    const draw = (): Promise<void> => this.draw(job, part, channels, signal);
    try {
      await (gate ? runWithProcessGate(gate, draw) : draw());
    } catch (error) {
      // Delivered (and its audio deleted) while the picture was being drawn.
      if (!(await exists(path.join(this.spool.jobDir(job.id), part.file)))) {
        throw gone(`The audio of job ${job.id} was delivered and deleted while its waveform was drawn`, 410);
      }
      throw error;
    }
    return file;
  }

  /** Before a delivered part's audio is deleted: draws part 1's pictures (best effort, never fails delivery). */
  async keep(job: JobRecord, part: SpooledPart, signal: AbortSignal | undefined): Promise<void> {
    const channels = job.report?.output.channels;
    if (!this.options.onDelivery || part.index !== 1 || channels === undefined) return;
    if (await exists(this.fileFor(job.id, channels - 1))) return;
    await this.draw(job, part, channels, signal).catch((error: unknown) => {
      this.log.warn({ jobId: job.id, err: error }, 'waveform not drawn');
    });
  }

  private draw(job: JobRecord, part: SpooledPart, channels: number, signal: AbortSignal | undefined): Promise<void> {
    const running = this.drawing.get(job.id);
    if (running) return running;
    const dir = this.spool.jobDir(job.id);
    const temps = Array.from({ length: channels }, (_, c) => path.join(dir, `.waveform-${c}.tmp.png`));
    const work = (async () => {
      try {
        await drawWaveforms(this.bins, { path: path.join(dir, part.file), hint: undefined, channels }, temps, {
          timeoutMs: DRAW_TIMEOUT_MS,
          signal,
        });
        for (let c = 0; c < channels; c++) await rename(temps[c]!, this.fileFor(job.id, c));
      } finally {
        await Promise.all(temps.map((t) => rm(t, { force: true })));
      }
    })().finally(() => this.drawing.delete(job.id));
    this.drawing.set(job.id, work);
    return work;
  }
}

function gone(message: string, status: 404 | 410): GatewayError {
  return new GatewayError(status === 410 ? 'GONE' : 'NOT_FOUND', message);
}
