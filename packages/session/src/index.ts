export * from './contract.js';
export * from './data.js';
export * from './middleware.js';
export * from './reader.js';
export * from './store.js';
export * from './user-sessions.js';
export * from './transport.js';
