/**
 * Builds the gateway's Reconciler from the configuration: the uploads' own
 * client (base URL, TLS, credentials, timeouts), IMAGICLE_TIMEOUT_MS as the
 * window of an ambiguous attempt, RECONCILE and RECONCILE_RECHECK_MS.
 */
import type { Config } from './config.js';
import type { Reconciler } from './delivery/reconcile-port.js';
import type { UpstreamClient } from './imagicle/client.js';
import { ImagicleReconciler } from './imagicle/reconcile.js';
import type { Logger } from './logger.js';
import type { GatewayMetrics } from './metrics.js';

export function reconcilerOf(
  config: Pick<Config, 'reconcile' | 'upstreamTimeoutMs' | 'imagicleCredentials'>,
  upstream: UpstreamClient,
  logger: Logger,
  metrics: Pick<GatewayMetrics, 'reconciled'> | undefined,
): Reconciler & Pick<ImagicleReconciler, 'available' | 'unavailableReason' | 'probe'> {
  return new ImagicleReconciler(
    {
      mode: config.reconcile.mode,
      attemptWindowMs: config.upstreamTimeoutMs,
      recheckMs: config.reconcile.recheckMs,
      canProbe: config.imagicleCredentials !== undefined,
    },
    { upstream, logger: logger.child({ component: 'reconcile' }), observe: metrics && ((r) => metrics.reconciled(r)) },
  );
}
