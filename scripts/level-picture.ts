/**
 * Makes docs/level.png: a call with a soft agent (left, about −38 dBFS) and a
 * loud customer with a DC offset (right) goes through the gateway's own
 * prepareCall with LEVEL=speech; ffmpeg draws both channels' waveforms
 * before (top) and after (bottom), on the same linear scale.
 *
 *   npx tsx scripts/level-picture.ts [out.png]
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
const out = path.resolve(process.argv[2] ?? path.join(repo, 'docs', 'level.png'));
const bins = resolveBinaries(loadConfig());

const work = await mkdtemp(path.join(os.tmpdir(), 'level-picture-'));
try {
  // The README's sample legs, made unequal: the agent 16 dB down, the customer 4 dB up with +0.05 DC.
  const call = path.join(work, 'call.wav');
  const graph =
    '[0:a]aformat=channel_layouts=mono,aresample=8000,volume=-16dB,apad=whole_len=64000[a];' +
    '[1:a]aformat=channel_layouts=mono,aresample=8000,volume=4dB,alimiter=limit=0.9:level=0:latency=1,' +
    'apad=whole_len=64000,aeval=val(0)+0.05:c=same[c];' +
    '[a][c]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR,atrim=end_sample=64000';
  await runFfmpeg(
    bins,
    [
      ...['-i', fileArg(path.join(repo, 'samples', 'agent-leg.wav'))],
      ...['-i', fileArg(path.join(repo, 'samples', 'customer-leg.ogg'))],
      ...['-filter_complex', graph, '-c:a', 'pcm_s16le', '-y', fileArg(call)],
    ],
    { timeoutMs: 60_000 },
  );
  const input = path.join(work, 'in');
  await cp(call, input);
  const prepared = await prepareCall(
    { attachment: { path: input, originalName: 'call.wav', extension: 'wav' }, direction: 2 },
    work,
    {
      bins,
      output: { format: 'pcm16', sampleRate: 8000, channels: 'keep', mp3BitrateKbps: 32 },
      limits: { maxDurationSeconds: 600, maxChannelsIn: 16, processTimeoutMs: 60_000 },
      stereo: { channelOrder: 'local-left', sourceProfile: 'generic', check: 'warn' },
      level: { mode: 'speech', targetDbfs: -20, maxPeakDbfs: -1, maxGainDb: 30 },
    },
  );
  const waves = (input: number, label: string) =>
    `[${input}:a]showwavespic=s=1200x300:split_channels=1:scale=lin:colors=0x1f77b4|0xd62728[w${input}];` +
    `color=c=white:s=1200x300:d=1[bg${input}];[bg${input}][w${input}]overlay=format=auto,pad=1200:340:0:40:white` +
    `,drawtext=text='${label}':x=12:y=10:fontsize=20:fontcolor=0x333333[p${input}]`;
  const plain = (input: number) =>
    `[${input}:a]showwavespic=s=1200x300:split_channels=1:scale=lin:colors=0x1f77b4|0xd62728[w${input}];` +
    `color=c=white:s=1200x300:d=1[bg${input}];` +
    `[bg${input}][w${input}]overlay=format=auto,pad=1200:340:0:40:white[p${input}]`;
  const args = (graph: string) => [
    ...['-protocol_whitelist', 'file', '-format_whitelist', 'wav', '-f', 'wav', '-i', fileArg(call)],
    ...['-protocol_whitelist', 'file', '-format_whitelist', 'wav', '-f', 'wav', '-i', fileArg(prepared.path)],
    ...['-filter_complex', `${graph};[p0][p1]vstack=inputs=2`, '-frames:v', '1', '-y', fileArg(out)],
  ];
  try {
    await runFfmpeg(
      bins,
      args(`${waves(0, 'before: left = agent, right = customer (+0.05 DC)')};${waves(1, 'after LEVEL=speech')}`),
      { timeoutMs: 60_000 },
    );
  } catch {
    // drawtext needs a font (fontconfig); without one the picture has no labels.
    await runFfmpeg(bins, args(`${plain(0)};${plain(1)}`), { timeoutMs: 60_000 });
  }
  console.log(`${out}: ${prepared.isoDuration} (${prepared.samples} samples)`);
  for (const c of prepared.level?.channels ?? []) {
    console.log(
      `  ${c.channel}: speech ${c.before.speechDbfs} → ${c.after.speechDbfs} dBFS, gain ${c.gainDb} dB, ` +
        `DC ${c.before.dcOffset} → ${c.after.dcOffset}, ` +
        `true peak ${c.before.truePeakDbfs} → ${c.after.truePeakDbfs} dBFS, ` +
        `limiter ${c.limiter.acted ? 'acted' : 'idle'} (${c.outcome})`,
    );
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
