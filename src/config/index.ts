export type { Origin, PullFromMirror, ShortNameMode, MirrorRule, RegistryRule, AliasRule, RegistriesConf, RegistriesConfFile, DaemonConfig } from './types.js';
export { originText, emptyRegistriesConf, emptyDaemonConfig, SHORT_NAME_MODES, PULL_FROM_MIRROR } from './types.js';
export { parseRegistriesConf, mergeRegistriesConf, registriesConfPaths, loadRegistriesConf, isQualifiedName, type TomlParse, type RegistriesConfPaths } from './registries-conf.js';
export { parseDaemonJson, loadDaemonJson, daemonInsecure } from './daemon-json.js';
export { matchLength, findRule, prefixError } from './prefix.js';
export { endpointsFor, parseMirrorFlag, blockedError, PULL_OPERATIONS, type Endpoint, type EndpointPlan, type EndpointOptions, type MirrorFlag, type NetworkRules, type Operation } from './endpoints.js';
export { resolveShortName, parseShortNameMode, type ShortNameResolution } from './short-names.js';
export { loadNetworkConfig, type NetworkConfigOptions } from './network-config.js';
