/** serve bounds the heap's growth between full collections (heap-growth.ts), unless the command line did. */
import { describe, expect, it } from 'vitest';
import { limitHeapGrowth } from '../../src/heap-growth.js';

describe('limitHeapGrowth', () => {
  it('sets a fixed growing factor', () => {
    expect(limitHeapGrowth([])).toBe(50);
  });

  it("keeps the operator's --heap-growing-percent", () => {
    expect(limitHeapGrowth(['--heap-growing-percent=100'])).toBeUndefined();
    expect(limitHeapGrowth(['--heap_growing_percent', '100'])).toBeUndefined();
  });
});
