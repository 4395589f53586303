/** The integration-test harness lives in packages/testkit (services' own tests use it too). */
export * from '@probemesh/testkit';
