interface Started {
  readonly offset: string;
  state: 'open' | 'ok' | 'failed';
}

/**
 * The commit rule of one partition, in one place: records are started in offset order and may settle in any order
 * (`ordering=none`); what may be committed is the last record before the first one still open or failed. A failed
 * record is never passed: it and everything after it are consumed again (`firstFailed` is where to seek).
 */
export class PartitionOffsets {
  /** Started records not yet passed by the commit point, in offset order (no index: one record with `key`, at most
   * the connector's capacity with `none`, and the one settling is usually near the head). */
  private readonly started: Started[] = [];
  private last: string | undefined;

  /** A record is handed to the connector (call in offset order). */
  start(offset: string): void {
    this.started.push({ offset, state: 'open' });
  }

  /** A started record settled: `ok` (acked), or failed (it holds the commit point until consumed again). */
  settle(offset: string, ok: boolean): void {
    const s = this.started.find((x) => x.offset === offset);
    if (s === undefined || s.state !== 'open') return;
    s.state = ok ? 'ok' : 'failed';
    let n = 0;
    while (n < this.started.length && (this.started[n] as Started).state === 'ok') n++;
    if (n === 0) return;
    this.last = (this.started[n - 1] as Started).offset;
    this.started.splice(0, n);
  }

  /** The offset to commit (it and every record started before it settled ok), or undefined when none. */
  committable(): string | undefined {
    return this.last;
  }

  /** The first record that failed, if any: where to consume again from. */
  firstFailed(): string | undefined {
    for (const s of this.started) if (s.state === 'failed') return s.offset;
    return undefined;
  }

  /** Records started and not settled. */
  open(): number {
    let n = 0;
    for (const s of this.started) if (s.state === 'open') n++;
    return n;
  }
}
