/** Level normalization's pure parts: the decision per channel, the filter graph, the settings, the request option. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { DEFAULT_LEVEL_POLICY, decideChannel, levelGraph, type LevelPolicy } from '../../src/media/level.js';
import type { ChannelLevelMeasure } from '../../src/media/level-survey.js';
import { parseStereoOptions } from '../../src/pipeline/call-options.js';

const policy: LevelPolicy = { ...DEFAULT_LEVEL_POLICY, mode: 'speech' };

function measure(speechDbfs: number | null, peaks: { truePeak: number; rare: number }, dc = 0): ChannelLevelMeasure {
  return {
    dc,
    speechDbfs,
    gatedShare: 0.4,
    samplePeakDbfs: peaks.truePeak,
    truePeakDbfs: peaks.truePeak,
    rarePeakDbfs: peaks.rare,
    peakHistogram: [],
  };
}

describe('decideChannel', () => {
  it.each([
    // [speech, true peak, rare peak, dc, silent] → outcome, gain
    {
      name: 'quiet speech: raised to the target',
      speech: -38,
      truePeak: -21,
      rare: -22,
      dc: 0,
      silent: false,
      outcome: 'applied',
      gain: 18,
      limiter: false,
    },
    {
      name: 'loud speech: lowered',
      speech: -14,
      truePeak: -1,
      rare: -2,
      dc: 0,
      silent: false,
      outcome: 'applied',
      gain: -6,
      limiter: false,
    },
    {
      name: 'a click over the ceiling: full gain, the limiter catches it',
      speech: -38,
      truePeak: -10,
      rare: -22,
      dc: 0,
      silent: false,
      outcome: 'applied',
      gain: 18,
      limiter: true,
    },
    {
      name: 'frequent peaks: the gain stops at the rare-peak level',
      speech: -30,
      truePeak: -6,
      rare: -8,
      dc: 0,
      silent: false,
      outcome: 'applied-capped-by-peak',
      gain: 7,
      limiter: true,
    },
    {
      name: 'no headroom at all',
      speech: -24,
      truePeak: -1.5,
      rare: -1.6,
      dc: 0,
      silent: false,
      outcome: 'no-headroom',
      gain: 0,
      limiter: false,
    },
    {
      name: 'within 1 dB',
      speech: -20.8,
      truePeak: -3,
      rare: -4,
      dc: 0,
      silent: false,
      outcome: 'in-range',
      gain: 0,
      limiter: false,
    },
    {
      name: 'silent',
      speech: -80,
      truePeak: -70,
      rare: -75,
      dc: 0,
      silent: true,
      outcome: 'silent',
      gain: 0,
      limiter: false,
    },
    {
      name: 'more than the gain cap',
      speech: -55,
      truePeak: -40,
      rare: -42,
      dc: 0,
      silent: false,
      outcome: 'over-gain-cap',
      gain: 0,
      limiter: false,
    },
  ])('$name', ({ speech, truePeak, rare, dc, silent, outcome, gain, limiter }) => {
    const d = decideChannel(measure(speech, { truePeak, rare }, dc), silent, policy);
    expect(d.outcome).toBe(outcome);
    expect(d.gainDb).toBeCloseTo(gain, 5);
    expect(d.limiter).toBe(limiter);
    expect(d.why.length).toBeGreaterThan(10);
  });

  it('removes a DC offset even when the level is in range, and never a negligible one alone', () => {
    expect(decideChannel(measure(-20.2, { truePeak: -3, rare: -4 }, 0.05), false, policy)).toMatchObject({
      outcome: 'in-range',
      dcOffset: 0.05,
      gainDb: 0,
    });
    expect(decideChannel(measure(-20.2, { truePeak: -3, rare: -4 }, 0.0002), false, policy)).toMatchObject({
      dcOffset: 0,
    });
    // With a gain, even a small DC goes: the gain would raise it too.
    expect(decideChannel(measure(-40, { truePeak: -25, rare: -26 }, 0.0005), false, policy).dcOffset).toBe(0.0005);
  });

  it('keeps a silent channel silent even with a large cap', () => {
    expect(
      decideChannel(measure(null, { truePeak: -90, rare: -90 }), false, { ...policy, maxGainDb: 60 }),
    ).toMatchObject({ outcome: 'silent', gainDb: 0 });
  });
});

describe('levelGraph', () => {
  const applied = decideChannel(measure(-38, { truePeak: -21, rare: -22 }), false, policy);
  const clicked = decideChannel(measure(-38, { truePeak: -10, rare: -22 }), false, policy);
  const dcOnly = decideChannel(measure(-20.2, { truePeak: -3, rare: -4 }, -0.05), false, policy);

  it('is one aeval per file, channels in order, without a limiter when none is needed', () => {
    const g = levelGraph([applied, dcOnly], policy);
    expect(g).toBe(
      '[0:a]aformat=sample_fmts=dbl,aeval=exprs=(val(0)-(0.000000000))*7.943282347|' +
        '(val(1)-(-0.050000000))*1.000000000:channel_layout=stereo[out]',
    );
  });

  it('limits each channel on its own, both with the same delay compensation', () => {
    const g = levelGraph([clicked, dcOnly], policy);
    expect(g).toContain('channelsplit=channel_layout=stereo[c0][c1]');
    expect(g).toContain('[c0]alimiter=limit=0.841395142:attack=2:release=50:level=0:latency=1[l0]');
    expect(g).toContain('[c1]alimiter=limit=1.000000000:attack=2:release=50:level=0:latency=1[l1]');
    expect(g).toMatch(/join=inputs=2:channel_layout=stereo:map=0\.0-FL\|1\.0-FR\[out\]$/);
  });

  it('handles mono, and refuses more than two channels', () => {
    expect(levelGraph([clicked], policy)).toMatch(/channel_layout=mono,alimiter=limit=0\.841395142.*\[out\]$/);
    expect(() => levelGraph([applied, applied, applied], policy)).toThrow(RangeError);
  });
});

describe('settings', () => {
  it('defaults to off, with the documented targets', () => {
    expect(loadConfig({}).level).toEqual({ mode: 'off', targetDbfs: -20, maxPeakDbfs: -1, maxGainDb: 30 });
    expect(
      loadConfig({ LEVEL: 'speech', LEVEL_TARGET_DBFS: '-23', LEVEL_MAX_PEAK_DBFS: '-2', LEVEL_MAX_GAIN_DB: '24' })
        .level,
    ).toEqual({
      mode: 'speech',
      targetDbfs: -23,
      maxPeakDbfs: -2,
      maxGainDb: 24,
    });
  });

  it('lists every bad level setting', () => {
    try {
      loadConfig({ LEVEL: 'loud', LEVEL_TARGET_DBFS: '5', LEVEL_MAX_PEAK_DBFS: 'x', LEVEL_MAX_GAIN_DB: '-3' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems.join('\n');
      for (const name of ['LEVEL:', 'LEVEL_TARGET_DBFS', 'LEVEL_MAX_PEAK_DBFS', 'LEVEL_MAX_GAIN_DB'])
        expect(problems).toContain(name);
    }
    expect(() => loadConfig({ LEVEL_TARGET_DBFS: '-10', LEVEL_MAX_PEAK_DBFS: '-12' })).toThrow(
      /below LEVEL_MAX_PEAK_DBFS/,
    );
  });

  it('reads level per request from the form or the query string', () => {
    expect(parseStereoOptions({ level: 'speech' }, {}, 1000)).toEqual({ level: 'speech' });
    expect(parseStereoOptions({}, { level: 'off' }, 1000)).toEqual({ level: 'off' });
    expect(() => parseStereoOptions({ level: 'loud' }, {}, 1000)).toThrow(/level must be one of off, speech/);
    expect(() => parseStereoOptions({ level: 'speech' }, { level: 'off' }, 1000)).toThrow(
      /level is "speech" in the form/,
    );
  });
});
