/** @probemesh/coordinator: targets, membership, placement, assignments and the gRPC AdminService. */
export { coordinatorConfigSchema, targetDefaultsSchema } from './config';
export type { CoordinatorConfig, TargetDefaults } from './config';
export { startCoordinator } from './coordinator';
export type { RunningCoordinator, CoordinatorDeps } from './coordinator';
export { createAdminClient } from './client';
export type { AdminClient, AdminCallOptions } from './client';
export { validateAddTarget, removeTargetId } from './validate';
export { placeTargets, countMoves } from './placement';
export type { Placement, PlacementOptions } from './placement';
export type { PlacementNode, ProberState } from './membership';
