import { setTimeout as sleep } from 'node:timers/promises';
import { type CheckinEntry, CHECKIN_STREAM, DEAD_LETTER_STREAM, entryTime, entryTraceparent, parseEntry, PROCESSOR_GROUP } from '@ncc/checkins';
import { inSpan, isRedisUnavailable, type Logger, reconnectDelay, SpanKind } from '@ncc/service-kit';
import { type CheckinGroup, compareIds, type DeliveredEntry, type Maintenance } from '../data-access/checkin-group.js';
import type { Effects } from '../data-access/effects.js';

export interface ProcessorSettings {
  batchSize: number;
  blockMs: number;
  claimIdleMs: number;
  maxDeliveries: number;
  trimIntervalMs: number;
  consumerIdleMs: number;
}

/**
 * What became of one delivered entry: its effects applied now; already applied before (a redelivery
 * after a crash between apply and XACK, or a race); acknowledged long ago by another consumer (a
 * processor that was stopped while holding it); or moved to the dead-letter stream.
 */
export type EntryOutcome = 'applied' | 'duplicate' | 'stale' | 'dead_lettered';

/**
 * The processor's loop, one batch at a time: maintenance when due (trim + the marker floor, removal of
 * consumers that left), this consumer's own pending entries after an error, idle entries of dead
 * consumers (XAUTOCLAIM) when due, else new entries (XREADGROUP BLOCK). A batch is applied
 * concurrently, then acknowledged with one XACK; the effects are idempotent by entry id, so a crash
 * anywhere in between applies nothing twice. Redis failing pauses the loop (backoff, then the own
 * pending entries first); any other error is a programmer error and ends the process.
 */
export class CheckinProcessor {
  readonly counts: Record<EntryOutcome | 'claimed', number> = { applied: 0, duplicate: 0, stale: 0, dead_lettered: 0, claimed: 0 };
  /** The latest maintenance reading (lag, pending, stream length). */
  last: Maintenance | null = null;
  private floor = 0;
  private groupReady = false;
  private ownPendingToCheck = true;
  private due = { maintenance: 0, claim: 0, sweep: 0 };
  private stopping = false;
  private running: Promise<void> | undefined;
  private lastHoldWarning = 0;

  constructor(
    private readonly group: CheckinGroup,
    private readonly effects: Effects,
    private readonly settings: ProcessorSettings,
    private readonly logger: Logger,
  ) {}

  /** Starts the loop; a programmer error inside it rejects the returned promise (and so ends the process). */
  start(): Promise<void> {
    this.running ??= this.run();
    return this.running;
  }

  /** Finishes the batch in hand (acknowledged), then resolves: at most one blocking read + one batch away. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running?.catch(() => undefined);
  }

  private async run(): Promise<void> {
    let failures = 0;
    let lastWarning = 0;
    while (!this.stopping) {
      try {
        await this.step();
        if (failures > 0) this.logger.info('Redis answers again; checkin processing resumes.');
        failures = 0;
      } catch (err) {
        if (err instanceof Error && err.message.startsWith('NOGROUP')) {
          // The stream or the group was deleted under us (DEL, FLUSHALL): create it again.
          this.logger.warn(`The consumer group ${PROCESSOR_GROUP} is gone; creating it again.`);
          this.groupReady = false;
          continue;
        }
        if (!isRedisUnavailable(err)) throw err;
        failures++;
        this.ownPendingToCheck = true;
        if (failures === 1 || Date.now() - lastWarning > 10_000) {
          lastWarning = Date.now();
          this.logger.warn('Redis did not answer; checkin processing pauses and retries.', { error: err instanceof Error ? err.message : String(err) });
        }
        // The Redis client's own reconnect backoff: jittered, at most 2 s.
        await sleep(reconnectDelay(failures));
      }
    }
  }

  private async step(): Promise<void> {
    const { batchSize, blockMs, claimIdleMs, consumerIdleMs, trimIntervalMs } = this.settings;
    if (!this.groupReady) {
      const created = await this.group.ensureGroup();
      this.groupReady = true;
      this.logger.info(`${created ? 'Created' : 'Joined'} consumer group ${PROCESSOR_GROUP} on ${CHECKIN_STREAM} as consumer ${this.group.consumer}.`);
    }
    const now = Date.now();
    if (now >= this.due.maintenance) {
      await this.maintain();
      this.due.maintenance = now + trimIntervalMs;
    }
    if (now >= this.due.sweep) {
      const removed = await this.group.removeIdleConsumers(consumerIdleMs);
      if (removed.length > 0)
        this.logger.info(`Removed ${removed.length} consumer(s) idle for over ${consumerIdleMs} ms with nothing pending: ${removed.join(', ')}.`);
      this.due.sweep = now + Math.min(consumerIdleMs / 2, 60_000);
    }
    if (this.ownPendingToCheck) {
      const own = await this.group.readOwnPending(batchSize);
      if (own.length > 0) return this.handle(own);
      this.ownPendingToCheck = false;
    }
    if (now >= this.due.claim) {
      const claimed = await this.group.claimIdle(claimIdleMs, batchSize);
      if (claimed.length > 0) {
        this.counts.claimed += claimed.length;
        this.logger.info(`Claimed ${claimed.length} entries pending for over ${claimIdleMs} ms on other consumers.`);
        // More may be waiting: claim again on the next step.
        return this.handle(claimed);
      }
      this.due.claim = now + Math.max(100, Math.min(claimIdleMs / 4, 5_000));
    }
    if (this.stopping) return;
    return this.handle(await this.group.readNew(batchSize, blockMs));
  }

  private async maintain(): Promise<void> {
    const reading = await this.group.maintain();
    if (!reading) {
      this.groupReady = false;
      return;
    }
    this.last = reading;
    this.floor = Math.max(this.floor, entryTime(reading.bound));
    const holder = reading.trimmedUpTo;
    if (holder.group !== PROCESSOR_GROUP && compareIds(holder.bound, reading.bound) < 0 && Date.now() - this.lastHoldWarning > 60_000) {
      this.lastHoldWarning = Date.now();
      this.logger.warn(
        `Consumer group "${holder.group}" has not acknowledged entries from ${holder.bound} on; ${CHECKIN_STREAM} is not trimmed past them (${reading.length} entries kept). ` +
          `If nothing reads that group any more: XGROUP DESTROY ${CHECKIN_STREAM} ${holder.group}`,
      );
    }
  }

  private async handle(entries: DeliveredEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const floor = this.floor;
    const outcomes = await Promise.all(entries.map((entry) => this.traced(entry, floor)));
    await this.group.ack(entries.map((entry) => entry.id));
    for (const outcome of outcomes) this.counts[outcome]++;
  }

  /**
   * One entry in a span of its own (a consumer span, OpenTelemetry's messaging conventions) that
   * continues the checkin request's trace when the entry carries its traceparent; the effect scripts'
   * Redis spans are its children. With tracing off this is the API's no-op.
   */
  private traced(delivered: DeliveredEntry, floor: number): Promise<EntryOutcome> {
    const attributes = {
      'messaging.system': 'redis',
      'messaging.operation.type': 'process',
      'messaging.destination.name': CHECKIN_STREAM,
      'messaging.consumer.group.name': PROCESSOR_GROUP,
      'messaging.message.id': delivered.id,
      'ncc.deliveries': delivered.deliveries,
    };
    return inSpan(`process ${CHECKIN_STREAM}`, { kind: SpanKind.CONSUMER, attributes, traceparent: entryTraceparent(delivered.fields) }, async (span) => {
      const outcome = await this.process(delivered, floor);
      span.setAttribute('ncc.outcome', outcome);
      this.logger.debug(`Checkin entry ${delivered.id}: ${outcome}.`);
      return outcome;
    });
  }

  private async process(delivered: DeliveredEntry, floor: number): Promise<EntryOutcome> {
    const { maxDeliveries } = this.settings;
    if (delivered.deliveries > maxDeliveries) {
      return this.deadLetter(delivered, `delivered ${delivered.deliveries} times, more than PROCESSOR_MAX_DELIVERIES (${maxDeliveries})`, floor);
    }
    const parsed = parseEntry(delivered.id, delivered.fields);
    if (!parsed.ok) return this.deadLetter(delivered, parsed.reason, floor);
    return this.apply(parsed.entry, delivered, floor);
  }

  private async apply(entry: CheckinEntry, delivered: DeliveredEntry, floor: number): Promise<EntryOutcome> {
    const user = await this.effects.applyToUser(entry, floor);
    if (user === 'unknown_user') return this.deadLetter(delivered, `unknown user ${entry.userId}`, floor);
    if (user === 'stale') return 'stale';
    const location = await this.effects.applyToLocation(entry, floor);
    if (user === 'applied' || location === 'applied') return 'applied';
    return location === 'stale' ? 'stale' : 'duplicate';
  }

  private async deadLetter(delivered: DeliveredEntry, reason: string, floor: number): Promise<EntryOutcome> {
    const result = await this.effects.deadLetter(delivered.id, entryTime(delivered.id), delivered.fields, reason, floor);
    if (result !== 'applied') return result === 'stale' ? 'stale' : 'duplicate';
    this.logger.warn(`Checkin entry ${delivered.id} moved to ${DEAD_LETTER_STREAM}: ${reason}.`);
    return 'dead_lettered';
  }
}
