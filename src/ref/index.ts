export { ImageReference, parseReference, parseRepository } from './reference.js';
export type { ParseReferenceOptions } from './reference.js';
export { isLoopbackRegistry } from './loopback.js';
export { DOCKER_HUB, DOCKER_HUB_API, DOCKER_HUB_CONFIG_KEY } from './grammar.js';
export type { RegistryProfile, RegistryProfileId, CloudProvider, UserConvention } from './registry-profiles.js';
export { REGISTRY_PROFILES, profileFor, profileForChallenge, profileValue, ecrRegion, acrName } from './registry-profiles.js';
