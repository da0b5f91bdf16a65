/** The shutdown signal every request in flight listens to: as many listeners as uploads, by design. */
import { describe, expect, it } from 'vitest';
import { Lifecycle } from '../../src/http/shutdown.js';

describe('Lifecycle', () => {
  it('takes one abort listener per request in flight without a MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const lifecycle = new Lifecycle();
      const listeners = Array.from({ length: 48 }, () => (): void => undefined);
      for (const listener of listeners) lifecycle.signal.addEventListener('abort', listener, { once: true });
      // The warning is emitted on a later tick.
      await new Promise((resolve) => setTimeout(resolve, 20));
      for (const listener of listeners) lifecycle.signal.removeEventListener('abort', listener);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });
});
