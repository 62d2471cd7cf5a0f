import { parse } from 'smol-toml';
import { mergeRegistriesConf, parseRegistriesConf, type RegistriesConf, type TomlParse } from '../../../src/config/index.js';
import { emptyDaemonConfig, type DaemonConfig } from '../../../src/config/types.js';
import type { NetworkRules } from '../../../src/config/endpoints.js';

/** One registries.conf text per file, merged in order (file names /c/0.conf, /c/1.conf, …). */
export function conf(...texts: string[]): RegistriesConf {
  return mergeRegistriesConf(texts.map((t, i) => parseRegistriesConf(t, `/c/${i}.conf`, parse as TomlParse)));
}

export function rules(text: string, daemon: DaemonConfig = emptyDaemonConfig()): NetworkRules {
  return { registries: conf(text), daemon };
}

/** The FerryError `fn` throws (fails the test if it does not throw one). */
export function thrown(fn: () => unknown): { code: string; message: string; hint?: string } {
  try {
    fn();
  } catch (e) {
    return e as { code: string; message: string; hint?: string };
  }
  throw new Error('expected a throw');
}
