/**
 * Makes docs/stereo-merge.png: the gateway merges the two legs of the sample
 * call (samples/agent-leg.wav, the local party; samples/customer-leg.ogg,
 * the remote party) exactly as a two-leg upload would, and ffmpeg draws both
 * channels' waveforms (showwavespic, split_channels=1): left channel on top.
 *
 *   npx tsx scripts/stereo-picture.ts [out.png]
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { fileArg, runFfmpeg } from '../src/media/ffmpeg-run.js';
import { resolveBinaries } from '../src/media/ffmpeg-tools.js';
import { prepareCall } from '../src/pipeline/prepare-call.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(repo, 'docs', 'stereo-merge.png'));
// FFMPEG_PATH / FFPROBE_PATH are honoured, through the gateway's own configuration.
const bins = resolveBinaries(loadConfig());

const work = await mkdtemp(path.join(os.tmpdir(), 'stereo-picture-'));
try {
  const stage = async (sample: string, part: string) => {
    const target = path.join(work, `in-${part}`);
    await cp(path.join(repo, 'samples', sample), target);
    return { path: target, originalName: sample, extension: path.extname(sample).slice(1) };
  };
  const prepared = await prepareCall(
    {
      attachment: await stage('agent-leg.wav', 'attachment'),
      remoteAttachment: await stage('customer-leg.ogg', 'remoteAttachment'),
      direction: 2,
    },
    work,
    {
      bins,
      output: { format: 'pcm16', sampleRate: 8000, channels: 'keep', mp3BitrateKbps: 32 },
      limits: { maxDurationSeconds: 600, maxChannelsIn: 16, processTimeoutMs: 60_000 },
      stereo: { channelOrder: 'local-left', sourceProfile: 'generic', check: 'warn' },
    },
  );
  // On a white background (showwavespic's own is transparent), so it reads the same in light and dark themes.
  const waves =
    '[0:a]showwavespic=s=1200x360:split_channels=1:scale=sqrt:colors=0x1f77b4|0xd62728[w];color=c=white:s=1200x360:d=1[bg];[bg][w]overlay=format=auto';
  const label = (text: string, y: string) => `drawtext=text='${text}':x=12:y=${y}:fontsize=20:fontcolor=0x333333`;
  const labelled = `${waves},pad=1200:400:0:40:white,${label('left = local party (agent-leg.wav)', '10')},${label('right = remote party (customer-leg.ogg)', '220')}`;
  const args = (graph: string) => [
    '-protocol_whitelist',
    'file',
    '-format_whitelist',
    'wav',
    '-f',
    'wav',
    '-i',
    fileArg(prepared.path),
    '-filter_complex',
    graph,
    '-frames:v',
    '1',
    '-y',
    fileArg(out),
  ];
  try {
    await runFfmpeg(bins, args(labelled), { timeoutMs: 60_000 });
  } catch {
    // drawtext needs a font (fontconfig); without one the picture has no labels.
    await runFfmpeg(bins, args(waves), { timeoutMs: 60_000 });
  }
  const a = prepared.stereo?.analysis;
  console.log(`${out}: ${prepared.isoDuration}, ${prepared.format.channels} channels`);
  for (const c of a?.channels ?? [])
    console.log(`  ${c.channel} (${c.party}): RMS ${c.rmsDbfs} dBFS, speech ${(c.speechShare * 100).toFixed(0)}%`);
} finally {
  await rm(work, { recursive: true, force: true });
}
