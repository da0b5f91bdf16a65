/**
 * The watched folder's state as the gateway shows it (WATCH_DIR under `serve`). Here, not in import/ or http/,
 * because both use it and neither may import the other (the lint zones).
 */

/** The watched folder as GET /metrics/status shows it (import/watch.ts answers it). */
export interface WatchedFolderStatus {
  /** Files in the folder not taken yet (still being written, or waiting for a worker). */
  waiting: number;
  /** Taken and not finished: converting, or a job of the store not ended yet. */
  inProgress: number;
  /** Left in place after an outage, to be tried again. */
  retrying: number;
  /** Since the gateway started. */
  taken: number;
  delivered: number;
  failed: number;
  lastScanAt: string | undefined;
}

/** Where GET /metrics/status finds the watched folder: serve's watcher attaches itself once it runs (import/serve-watch.ts). */
export class WatchedFolderBoard {
  private source: (() => WatchedFolderStatus) | undefined;

  attach(source: () => WatchedFolderStatus): () => void {
    this.source = source;
    return () => {
      if (this.source === source) this.source = undefined;
    };
  }

  status(): WatchedFolderStatus | undefined {
    return this.source?.();
  }
}
