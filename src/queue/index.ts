/** The queue layer (BullMQ on Redis): addresses, trial jobs, the worker, and the queue's view of an experiment. */
export * from './connection.js';
export * from './jobs.js';
export * from './worker.js';
export * from './status.js';
