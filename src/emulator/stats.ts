/** Counters of upload requests, as `GET /emulator/stats` shows them. */
export interface EmulatorStatsSnapshot {
  /** Upload requests received. */
  requests: number;
  /** Uploads stored and answered 201. */
  accepted: number;
  /** Uploads refused (400/401/500) or abandoned by the client. */
  rejected: number;
  /** Uploads answered by an injected fault (status or reset). */
  faulted: number;
}

export class EmulatorStats {
  private counts: EmulatorStatsSnapshot = { requests: 0, accepted: 0, rejected: 0, faulted: 0 };

  count(kind: keyof EmulatorStatsSnapshot): void {
    this.counts[kind] += 1;
  }

  snapshot(): EmulatorStatsSnapshot {
    return { ...this.counts };
  }

  reset(): void {
    this.counts = { requests: 0, accepted: 0, rejected: 0, faulted: 0 };
  }
}
