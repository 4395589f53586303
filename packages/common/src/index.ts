/** @probemesh/common: config, errors, logging, clock, NATS helpers shared by the services. */
export * from './errors';
export * from './duration';
export * from './schema';
export * from './config';
export * from './log';
export * from './clock';
export * from './ids';
export * from './long';
export * from './nats';
export * from './http';
export * from './version';
