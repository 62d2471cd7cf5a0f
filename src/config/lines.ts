/**
 * Finds the line of a TOML table or key in a file's text, for error messages and origins (the
 * parser gives positions only for syntax errors). Tables are found by their header lines; keys by
 * `key =` between one header and the next. Inline tables fall back to the enclosing header.
 */
interface Header {
  line: number;
  /** 'registry', 'registry.mirror', 'aliases', …, or '' for the top level. */
  name: string;
  array: boolean;
}

export class TomlLines {
  private readonly lines: string[];
  private readonly headers: Header[];

  constructor(text: string) {
    this.lines = text.split(/\r?\n/);
    this.headers = [{ line: 1, name: '', array: false }];
    this.lines.forEach((l, i) => {
      const m = /^\s*(\[\[?)\s*([A-Za-z0-9_.\-" ]+?)\s*\]\]?/.exec(l);
      if (m) this.headers.push({ line: i + 1, name: m[2]!.replace(/["\s]/g, ''), array: m[1] === '[[' });
    });
  }

  /** Index into headers of the n-th `[[name]]` table (0-based). */
  private tableIndex(name: string, n: number, from = 0, until = this.headers.length): number | undefined {
    let seen = 0;
    for (let i = from; i < until; i++) {
      if (this.headers[i]!.name !== name) continue;
      if (seen++ === n) return i;
    }
    return undefined;
  }

  private keyIn(hi: number, key: string): number | undefined {
    const start = this.headers[hi]!.line - (hi === 0 ? 1 : 0);
    const end = hi + 1 < this.headers.length ? this.headers[hi + 1]!.line - 1 : this.lines.length;
    const re = new RegExp(`^\\s*(?:"${escape(key)}"|'${escape(key)}'|${escape(key)})\\s*=`);
    for (let l = start; l < end; l++) if (re.test(this.lines[l]!)) return l + 1;
    return undefined;
  }

  /** Line of a top-level key (before any table), else 1. */
  top(key?: string): number {
    return (key && this.keyIn(0, key)) || 1;
  }

  /** Line of the n-th `[[registry]]` (or of `key` in it). */
  registry(n: number, key?: string): number {
    const hi = this.tableIndex('registry', n);
    if (hi === undefined) return this.top('registry');
    return (key && this.keyIn(hi, key)) || this.headers[hi]!.line;
  }

  /** Line of the m-th `[[registry.mirror]]` of the n-th `[[registry]]` (or of `key` in it). */
  mirror(n: number, m: number, key?: string): number {
    const ri = this.tableIndex('registry', n);
    if (ri === undefined) return this.registry(n);
    const next = this.tableIndex('registry', 0, ri + 1);
    const mi = this.tableIndex('registry.mirror', m, ri + 1, next ?? this.headers.length);
    if (mi === undefined) return this.registry(n, 'mirror');
    return (key && this.keyIn(mi, key)) || this.headers[mi]!.line;
  }

  /** Line of the first table header whose name is `name` or starts with `name.`, else of a top-level `name =`. */
  firstTable(name: string): number {
    const h = this.headers.find((h, i) => i > 0 && (h.name === name || h.name.startsWith(`${name}.`)));
    return h ? h.line : this.top(name);
  }

  /** Line of `key` in the `[name]` table (e.g. aliases), else its header, else 1. */
  table(name: string, key?: string): number {
    const hi = this.headers.findIndex((h, i) => i > 0 && h.name === name);
    if (hi < 0) return this.top(name);
    return (key && this.keyIn(hi, key)) || this.headers[hi]!.line;
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** 1-based line of a character offset. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
