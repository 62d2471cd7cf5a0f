/** Media types (OCI image-spec media-types.md; Docker manifest v2 schema 2). */
export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** Every manifest type ferry reads; sent as Accept on manifest requests (protocol.md §1.2). */
export const MANIFEST_ACCEPT = [MT.ociIndex, MT.dockerList, MT.ociManifest, MT.dockerManifest] as const;

export function isIndexType(mt: string | undefined): boolean {
  return mt === MT.ociIndex || mt === MT.dockerList;
}

export function isImageManifestType(mt: string | undefined): boolean {
  return mt === MT.ociManifest || mt === MT.dockerManifest;
}

export function isManifestType(mt: string | undefined): boolean {
  return isIndexType(mt) || isImageManifestType(mt);
}

export function isSchema1(mt: string | undefined): boolean {
  return mt === MT.dockerSchema1 || mt === MT.dockerSchema1Signed;
}

/** Strips parameters (`; charset=…`) and lowercases a Content-Type. */
export function bareMediaType(ct: string | undefined | null): string {
  return (ct ?? '').split(';')[0]!.trim().toLowerCase();
}
