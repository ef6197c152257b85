/** Names of the SQS source's counters. */
export type SqsStat =
  | 'received'
  | 'deleted'
  | 'extended'
  | 'released'
  | 'receiveCalls'
  | 'deleteRetries'
  | 'deleteFailures'
  | 'corrupted';

/** The SQS source's counters (see `SqsSource.stats`). */
export type SqsStats = Record<SqsStat, number>;

/** Counters all at zero. */
export function newStats(): SqsStats {
  return {
    received: 0,
    deleted: 0,
    extended: 0,
    released: 0,
    receiveCalls: 0,
    deleteRetries: 0,
    deleteFailures: 0,
    corrupted: 0,
  };
}
