/**
 * The command's network configuration: the flags (NetworkConfigOptions, carried in SessionOptions)
 * and the files they point at, loaded once per command.
 */
import { loadDaemonJson } from './daemon-json.js';
import type { MirrorFlag, NetworkRules } from './endpoints.js';
import { loadRegistriesConf } from './registries-conf.js';
import type { ShortNameMode } from './types.js';

/** The global flags: --mirror (repeatable), --no-mirrors, --daemon-config, --registries-conf, --short-name-mode. */
export interface NetworkConfigOptions {
  mirrors?: readonly MirrorFlag[];
  noMirrors?: boolean;
  daemonConfig?: string;
  registriesConf?: string;
  shortNameMode?: ShortNameMode;
}

/**
 * Reads registries.conf (+ drop-ins, alias cache) and daemon.json. `env` supplies HOME,
 * CONTAINERS_REGISTRIES_CONF and FERRY_SYSCONF_ROOT (a directory standing for / in front of /etc).
 */
export async function loadNetworkConfig(opts: NetworkConfigOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<NetworkRules> {
  const registries = await loadRegistriesConf(env, opts.registriesConf);
  const daemon = loadDaemonJson(env, opts.daemonConfig);
  return { registries, daemon };
}
