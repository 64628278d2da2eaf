// The checkin stream and the statistics it feeds: the contract between the receiver (checkin), the
// processor and the read API.
export {
  type CheckinEntry,
  CHECKIN_STREAM,
  DEAD_LETTER_STREAM,
  ENTRY_FIELDS,
  entrySchema,
  entryTraceparent,
  entryTime,
  type ParsedEntry,
  parseEntry,
  PROCESSOR_GROUP,
  TRACEPARENT_FIELD,
} from './stream.js';
export { appliedKey, locationKey, type LocationStats, StatsRepository, userKey, type UserStats } from './stats.js';
