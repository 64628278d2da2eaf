// What other workspace packages may use of the processor (the service itself is main.ts): the bench
// and the tests build it in-process from its composition root.
export { createProcessorApp, type ProcessorApp } from './app.js';
export { type ProcessorConfig, processorEnvSchema } from './config.js';
export type { EntryOutcome } from './domain/processor.js';
