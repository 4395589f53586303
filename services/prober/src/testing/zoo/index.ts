/**
 * The zoo: real local servers with known behaviour, for the probe module tests (and any
 * other test). Each starts on 127.0.0.1 with a random port and has `close()`.
 */
export * from './dns-server';
export * from './certs';
export * from './tcp-servers';
export * from './grpc-health-server';
export * from './netns';
export * from './thrift-server';
