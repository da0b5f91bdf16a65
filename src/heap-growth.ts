/**
 * How far V8 lets the heap grow between two full garbage collections, for `serve` (a long-lived process).
 *
 * V8 sets the next full collection at the live heap times a factor it picks from its own speed, up to 4. A
 * gateway holding a large backlog keeps a lot alive and makes garbage that outlives the young generation
 * (every upload's request objects wait for fsyncs and journal writes): at 20,000 spooled jobs, 78 MB were live
 * after a full GC and the heap stood at 275 MB, RSS 360 MB (issue 21, docs/benchmarks.md). A fixed factor of
 * 1 + HEAP_GROWING_PERCENT/100 keeps the heap near what is live, for more frequent (incremental, mostly
 * concurrent) full collections: measured in docs/benchmarks.md.
 *
 * The flag is read by V8 at every full collection, so setting it at start-up applies. `node
 * --heap-growing-percent=N dist/main.js serve` (it is not allowed in NODE_OPTIONS) keeps the operator's value.
 */
import v8 from 'node:v8';

const HEAP_GROWING_PERCENT = 50;

export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv): number | undefined {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return undefined;
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return HEAP_GROWING_PERCENT;
}
