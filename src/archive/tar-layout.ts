import { encodeTarHeader, entryName, paddedSize, TAR_TRAILER, type TarEntryHeader } from './tar-header.js';

/** Where one entry sits in the archive. Offsets are absolute byte positions in the tar file. */
export interface TarEntryLayout<T extends TarEntryHeader = TarEntryHeader> {
  entry: T;
  /** Stored name (directories end in '/'). */
  name: string;
  /** Encoded header bytes (pax + ustar when needed), to be written at `headerOffset`. */
  header: Buffer;
  headerOffset: number;
  /** First data byte; the data is `entry.size` bytes, then zero padding to a block boundary. */
  dataOffset: number;
}

export interface TarLayout<T extends TarEntryHeader = TarEntryHeader> {
  entries: Array<TarEntryLayout<T>>;
  /** Offset of the two-block zero trailer. */
  trailerOffset: number;
  /** Total archive size, trailer included. */
  size: number;
}

/**
 * Lays out a tar whose every entry size is known in advance: each entry's header and data offset,
 * and the total length. A file of `size` bytes that is zero-filled (ftruncate) and then receives
 * every header at `headerOffset` and every entry's data at `dataOffset` is a complete archive:
 * padding and trailer are zeros already. Names must be unique.
 */
export function layoutTar<T extends TarEntryHeader>(entries: readonly T[]): TarLayout<T> {
  const seen = new Set<string>();
  const out: Array<TarEntryLayout<T>> = [];
  let pos = 0;
  for (const entry of entries) {
    const name = entryName(entry);
    if (seen.has(name)) throw new Error(`tar layout: duplicate entry ${name}`);
    seen.add(name);
    const header = encodeTarHeader(entry);
    out.push({ entry, name, header, headerOffset: pos, dataOffset: pos + header.length });
    pos += header.length + paddedSize(entry.size);
  }
  return { entries: out, trailerOffset: pos, size: pos + TAR_TRAILER };
}
