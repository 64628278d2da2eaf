// What other workspace packages may use of the checkin service (the service itself is main.ts): the
// checkin stream with its accept script, so bench/checkin-memory.ts measures exactly what the service
// runs in Redis.
export { type AppendResult, type Checkin, type CheckinLimits, CHECKIN_STREAM, CheckinStream } from './data-access/checkin-stream.js';
