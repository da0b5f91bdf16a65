/**
 * DTMF detection and masking of a prepared recording (DTMF=detect|mask, or
 * `dtmf=` per request): after transcoding, channel mapping, leg merging and
 * level normalization, before the size limit and splitting, so that a part
 * boundary never cuts a tone into two unmasked halves.
 *
 * The tones are found on the converted PCM: while ffmpeg writes a stereo WAV
 * (beside the stereo analysis, no pass of its own), else in one read of the
 * output; an MP3 is decoded once for it. `mask` replaces each tone in its own
 * channel (media/dtmf-mask.ts): a WAV is patched in place, span by span, so the
 * other channel and every other sample stay bit-identical; an MP3 is masked as
 * PCM and encoded once more. A client's compliant file with no tone is left
 * exactly as it came.
 *
 * docs/dtmf.md explains the detector, its thresholds and what it cannot do.
 */
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../errors.js';
import { maskSpans } from '../media/dtmf-mask.js';
import { DEFAULT_DTMF_POLICY, type DtmfMode, type DtmfPolicy } from '../media/dtmf-policy.js';
import { detectInWav, maskWavInPlace, type DtmfScan } from '../media/dtmf-wav.js';
import { knownOutput } from '../media/render-job.js';
import { channelReports, type DtmfReport } from './dtmf-report.js';
import { sameFormat } from './level.js';
import type { PrepareDeps, PreparedAudio } from './prepared.js';
import { nonFatal, render } from './render.js';

export interface DtmfDeps extends PrepareDeps {
  dtmf?: DtmfPolicy | undefined;
}

/**
 * Finds (and under `mask` masks) the tones of a prepared recording. `keep` lists the client's own files, which
 * are never changed: a compliant file to mask is copied first.
 */
export async function dtmfPrepared(
  prepared: PreparedAudio,
  mode: DtmfMode,
  decidedBy: string,
  workDir: string,
  deps: DtmfDeps,
  keep: readonly string[],
  signal?: AbortSignal,
): Promise<PreparedAudio> {
  const { dtmfScan, ...rest } = prepared;
  if (mode === 'off') return rest;
  const policy = deps.dtmf ?? DEFAULT_DTMF_POLICY;
  const report: DtmfReport = {
    mode,
    decidedBy,
    action: 'none',
    tones: 0,
    channels: [],
    followed: false,
    warnings: [],
    detectMs: 0,
    maskMs: 0,
    rendered: false,
  };
  const dir = path.join(workDir, 'dtmf');
  await mkdir(dir, { recursive: true });
  const t0 = performance.now();
  const followed = dtmfScan && dtmfScan.file === prepared.path && dtmfScan.frames === prepared.samples;
  // An MP3 is read through a WAV of its samples; masking masks that WAV and encodes it once.
  let decoded: string | undefined;
  let scan: DtmfScan;
  try {
    if (followed) {
      scan = dtmfScan;
    } else {
      if (prepared.container !== 'wav') decoded = await decodeToWav(prepared, dir, deps, signal);
      scan = await detectInWav(decoded ?? prepared.path, signal);
    }
  } catch (error) {
    if (decoded) await rm(decoded, { force: true });
    const why = nonFatal(error, signal);
    // Masking was asked for: a recording whose tones cannot be looked for is not delivered as if it had none.
    if (mode === 'mask')
      throw new GatewayError('INTERNAL', `DTMF masking failed: the audio could not be read (${why})`);
    report.warnings.push(`DTMF detection skipped: the output could not be read (${why})`);
    return { ...rest, dtmf: report };
  }
  report.followed = followed === true;
  report.detectMs = Math.round(performance.now() - t0);
  report.tones = scan.tones.length;
  report.channels = channelReports(scan.tones, scan.channels, scan.sampleRate);
  if (scan.tones.length === 0 || mode === 'detect') {
    if (decoded) await rm(decoded, { force: true });
    report.action = scan.tones.length === 0 ? 'none' : 'detected';
    return { ...rest, dtmf: report };
  }

  const t1 = performance.now();
  report.guardMs = policy.guardMs;
  report.mask = policy.mask;
  const spans = maskSpans(scan.tones, scan.sampleRate, scan.frames, policy.guardMs);
  let masked: PreparedAudio;
  if (decoded) {
    masked = await maskMp3(rest, decoded, spans, policy, dir, deps, signal);
    report.reencoded = 'the MP3 was decoded, masked and encoded again (one more MP3 generation)';
  } else {
    // Our own render is masked where it is; the client's file is copied first.
    const ours = !keep.some((k) => path.resolve(k) === path.resolve(prepared.path));
    const file = ours ? prepared.path : path.join(dir, `masked${path.extname(prepared.path) || '.wav'}`);
    if (!ours) await copyFile(prepared.path, file);
    if (!(await maskWavInPlace(file, spans, policy.mask))) {
      throw new GatewayError('INTERNAL', `DTMF masking failed: ${prepared.format.codec} samples cannot be masked`);
    }
    if (!ours && prepared.format.codec !== 'pcm_s16le' && prepared.format.codec !== 'pcm_u8') {
      report.reencoded = `the masked spans were encoded again as ${prepared.format.codec} (one more generation there)`;
    }
    masked = { ...rest, path: file, bytes: (await stat(file)).size };
  }
  report.action = 'masked';
  report.rendered = true;
  report.maskMs = Math.round(performance.now() - t1);
  const perChannel = report.channels.map((c) => `${c.channel} ${c.tones}`).join(', ');
  const reason = `${report.tones} DTMF tone(s) masked with ${policy.mask} (${perChannel}; ${decidedBy})`;
  return {
    ...masked,
    plan: { ...masked.plan, reasons: [...masked.plan.reasons, reason] },
    timings: {
      ...masked.timings,
      processMs: masked.timings.processMs + (performance.now() - t1),
      measureMs: masked.timings.measureMs + (t1 - t0),
    },
    dtmf: report,
  };
}

async function decodeToWav(
  prepared: PreparedAudio,
  dir: string,
  deps: PrepareDeps,
  signal: AbortSignal | undefined,
): Promise<string> {
  const wav = path.join(dir, 'decoded.wav');
  const job = {
    kind: 'decode-for-analysis',
    input: prepared.path,
    output: wav,
    seconds: prepared.durationSeconds,
  } as const;
  await render(job, { bins: deps.bins, limits: deps.limits, from: [], signal });
  return wav;
}

/** An MP3: its decoded samples masked, then encoded once in its own format (same rate, channels, bitrate). */
async function maskMp3(
  prepared: PreparedAudio,
  decoded: string,
  spans: Parameters<typeof maskWavInPlace>[1],
  policy: DtmfPolicy,
  dir: string,
  deps: PrepareDeps,
  signal: AbortSignal | undefined,
): Promise<PreparedAudio> {
  const target = sameFormat(prepared, deps);
  if (!target || !(await maskWavInPlace(decoded, spans, policy.mask))) {
    throw new GatewayError('INTERNAL', `DTMF masking failed: ${prepared.format.codec} cannot be masked`);
  }
  const output = knownOutput(path.join(dir, `masked.${target.container}`), target, prepared.durationSeconds);
  const job = {
    kind: 'level',
    input: decoded,
    inputContainer: 'wav',
    graph: '[0:a]anull[out]',
    target,
    output,
  } as const;
  const run = await render(job, { bins: deps.bins, limits: deps.limits, from: [], signal });
  await rm(decoded, { force: true });
  const measured = run.outputs[0]!;
  if (measured.samples !== prepared.samples) {
    throw new GatewayError(
      'INTERNAL',
      `DTMF masking: encoding the ${prepared.samples} masked samples as MP3 gave ${measured.samples}: not delivered`,
    );
  }
  return { ...prepared, path: measured.path, bytes: measured.bytes, timings: { ...prepared.timings } };
}
