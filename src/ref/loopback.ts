/**
 * Loopback detection for registry hosts: `localhost`, 127.0.0.0/8 and ::1, each with or without a
 * port, IPv6 with or without brackets. Used to default to plain HTTP / relaxed TLS like docker does.
 */

export function isLoopbackRegistry(registry: string): boolean {
  const s = registry.trim().toLowerCase();
  let host: string;
  let port: string | undefined;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) return false;
    host = s.slice(1, close);
    const tail = s.slice(close + 1);
    if (tail !== '' && !tail.startsWith(':')) return false;
    port = tail === '' ? undefined : tail.slice(1);
    if (port !== undefined && !/^[0-9]+$/.test(port)) return false;
    return isIPv6Loopback(host);
  }
  const colons = s.split(':').length - 1;
  if (colons > 1) return isIPv6Loopback(s);
  [host, port] = s.split(':') as [string, string | undefined];
  if (port !== undefined && !/^[0-9]+$/.test(port)) return false;
  return host === 'localhost' || isIPv4Loopback(host);
}

function isIPv4Loopback(host: string): boolean {
  const m = /^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$/.exec(host);
  if (!m) return false;
  const octets = m.slice(1).map(Number);
  return octets[0] === 127 && octets.every((o) => o <= 255);
}

/** True for any spelling of ::1 (e.g. `::1`, `0:0:0:0:0:0:0:1`, `0::0:1`). */
function isIPv6Loopback(host: string): boolean {
  const halves = host.split('::');
  if (halves.length > 2) return false;
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const given = [...head, ...tail];
  if (!given.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return false;
  if (halves.length === 1 ? given.length !== 8 : given.length > 7) return false;
  const all = [...head, ...Array<string>(8 - given.length).fill('0'), ...tail];
  return all.every((g, i) => parseInt(g, 16) === (i === 7 ? 1 : 0));
}
