import { z } from 'zod';

/**
 * The checkin stream: the contract between the receiver (checkin, which appends), the processor
 * (which consumes it in a consumer group) and anyone else who reads it — the course's own processors
 * read the fields by name and by position, so names and order are fixed: userId, locationId,
 * starRating, receivedAt; a new field may only be appended after them.
 */
export const CHECKIN_STREAM = 'ncc:checkins';
export const ENTRY_FIELDS = ['userId', 'locationId', 'starRating', 'receivedAt'] as const;

/**
 * Appended after ENTRY_FIELDS when the checkin request was traced: its W3C traceparent, so that the
 * processor's span for the entry continues the request's trace. Optional; readers that do not know it ignore it.
 */
export const TRACEPARENT_FIELD = 'traceparent';

/** The entry's traceparent field, if it has one (a flat field/value list, as Redis returns it). */
export function entryTraceparent(fields: readonly string[]): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === TRACEPARENT_FIELD) return fields[i + 1];
  return undefined;
}

/** The processors' consumer group (created at their start with MKSTREAM, from the stream's first entry). */
export const PROCESSOR_GROUP = 'checkinProcessors';

/** Entries the processor could not apply, each with the original fields plus `entryId` and `reason`. */
export const DEAD_LETTER_STREAM = 'ncc:checkins:dead';

const id = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** What a valid entry holds. Fields arrive as strings; an entry that does not parse is dead-lettered. */
export const entrySchema = z.object({
  userId: id,
  locationId: id,
  starRating: z.coerce.number().int().min(0).max(5),
  receivedAt: z.coerce.number().int().min(0),
});

export type CheckinEntry = z.infer<typeof entrySchema> & {
  /** The stream entry id, `<ms>-<seq>`. */
  id: string;
  /** The entry's time: the ms part of its id (Redis's clock when it was appended). */
  time: number;
};

export type ParsedEntry = { ok: true; entry: CheckinEntry } | { ok: false; reason: string };

/** `<ms>-<seq>` → ms. */
export const entryTime = (entryId: string): number => Number(entryId.slice(0, entryId.indexOf('-')));

/** A stream entry as Redis returns it (a flat field/value list) → a checkin, or why it is not one. */
export function parseEntry(entryId: string, fields: readonly string[]): ParsedEntry {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    // The first occurrence wins, as for the course's positional readers.
    if (!(name in record)) record[name] = fields[i + 1]!;
  }
  const empty = ENTRY_FIELDS.filter((name) => record[name] === undefined || record[name] === '');
  if (empty.length > 0) return { ok: false, reason: `missing field ${empty.join(', ')}` };
  const result = entrySchema.safeParse(record);
  if (!result.success) {
    const bad = [...new Set(result.error.issues.map((issue) => issue.path.join('.')))];
    return { ok: false, reason: `invalid field ${bad.join(', ')}` };
  }
  return { ok: true, entry: { ...result.data, id: entryId, time: entryTime(entryId) } };
}
