/**
 * Peak memory of this process's children, read from /proc while they run:
 * VmHWM (the peak resident set) of every process whose parent is us. Polled,
 * so a child that lives less than one interval may be missed; what is seen
 * is exact for that child.
 */
import { readdir, readFile } from 'node:fs/promises';

export interface ChildMemoryWatch {
  /** Stops polling; the largest VmHWM seen (bytes) and the commands seen. */
  stop(): Promise<{ peakBytes: number; commands: string[] }>;
}

/** Our children's pids, from /proc/<pid>/task/<tid>/children (cheap enough to poll every few ms). */
async function childPids(ppid: number): Promise<string[]> {
  const pids: string[] = [];
  for (const task of await readdir(`/proc/${ppid}/task`).catch(() => [] as string[])) {
    const list = await readFile(`/proc/${ppid}/task/${task}/children`, 'utf8').catch(() => '');
    pids.push(...list.split(' ').filter(Boolean));
  }
  return pids;
}

async function childrenOf(ppid: number): Promise<Array<{ pid: string; hwmBytes: number; command: string }>> {
  const found: Array<{ pid: string; hwmBytes: number; command: string }> = [];
  for (const pid of await childPids(ppid)) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    if (status === '') continue;
    const hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
    found.push({ pid, hwmBytes: hwm, command: /^Name:\s+(\S+)/m.exec(status)?.[1] ?? '?' });
  }
  return found;
}

export function watchChildMemory(intervalMs = 10): ChildMemoryWatch {
  let peakBytes = 0;
  const commands = new Set<string>();
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const child of await childrenOf(process.pid)) {
        peakBytes = Math.max(peakBytes, child.hwmBytes);
        commands.add(child.command);
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { peakBytes, commands: [...commands] };
    },
  };
}

export const canWatchChildMemory = process.platform === 'linux';
