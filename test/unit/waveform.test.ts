import { describe, expect, it } from 'vitest';
import { waveformArgs, WAVEFORM_MAX_SECONDS } from '../../src/media/waveform.js';

describe('waveformArgs', () => {
  it('draws one picture per channel from the first audio stream, with the restricted input options', () => {
    const args = waveformArgs('/spool/job/part-1.wav', undefined, 2, ['/spool/job/a.png', '/spool/job/b.png']);
    expect(args.slice(0, 2)).toEqual(['-protocol_whitelist', 'file']);
    expect(args).toContain('-format_whitelist');
    expect(args[args.indexOf('-i') + 1]).toBe('file:/spool/job/part-1.wav');
    expect(args[args.indexOf('-t') + 1]).toBe(String(WAVEFORM_MAX_SECONDS));
    const graph = args[args.indexOf('-filter_complex') + 1]!;
    expect(graph).toMatch(/^\[0:a:0\]asplit=2\[a0\]\[a1\];/);
    expect(graph).toContain('[a0]pan=mono|c0=c0,showwavespic');
    expect(graph).toContain('[a1]pan=mono|c0=c1,showwavespic');
    expect(args.filter((a) => a === '-map')).toHaveLength(2);
    expect(args.slice(-1)).toEqual(['file:/spool/job/b.png']);
  });

  it('needs no split for mono, and refuses a channel count that does not match the outputs', () => {
    const graph = waveformArgs('/x.wav', undefined, 1, ['/x.png']);
    expect(graph[graph.indexOf('-filter_complex') + 1]).toMatch(/^\[0:a:0\]pan=mono\|c0=c0,showwavespic=s=800x120/);
    expect(() => waveformArgs('/x.wav', undefined, 2, ['/x.png'])).toThrow(RangeError);
    expect(() => waveformArgs('/x.wav', undefined, 0, [])).toThrow(RangeError);
  });
});
