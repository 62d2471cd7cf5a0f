/**
 * What ferry knows about named registries, as data: one row per registry, matched by host name
 * (or, for self-hosted products such as Harbor, by the token challenge they send). Code asks this
 * table instead of testing host names in `if`s. Sources for every fact: protocol.md §3 (Docker Hub
 * pulls.md, GHCR docs, Quay, ECR API reference and ecr-login helper, ACR docs, GCR/AR docs,
 * Harbor source, NGC and IBM Cloud docs).
 *
 * Who reads what:
 * - `cloud` (+ `region`, `acrName`): auth/cloud — which CLI can mint credentials without a helper.
 * - `tokenPost: false`: auth/token — skip the OAuth2 POST (Harbor answers 405) and GET at once.
 * - `badCredentialsStatus`: auth/token — a token endpoint that says 400 to a wrong password (IBM).
 * - `users`, `loginHint`: 401 hints and `ferry login` warnings (NGC's `$oauthtoken`, Harbor's
 *   `robot$…` mangled by a shell into `robot+…`).
 * - `chunk`: registry/upload — chunk bounds when an upload has to be chunked (ECR ≥ 5 MiB parts,
 *   GHCR ≤ 4 MiB PATCH bodies).
 * - `rateLimitHeaders`: `ferry ratelimit`'s default registry and the inspect/`--verbose` display.
 * - everything (incl. `realm`, `service`, `tagPageSize`, `mount`): `ferry auth explain`, which
 *   prints the profile next to what the registry actually answered.
 */

export type RegistryProfileId =
  | 'dockerhub' | 'ghcr' | 'quay' | 'ecr' | 'ecr-public' | 'acr' | 'gcr' | 'artifact-registry'
  | 'harbor' | 'ngc' | 'icr';

export type CloudProvider = 'aws' | 'aws-public' | 'gcp' | 'azure';

export interface UserConvention {
  /** Literal user name ('AWS', '$oauthtoken') or a pattern description ('org+robot'). */
  user: string;
  /** What the password is for that user. */
  secret: string;
}

export interface RegistryProfile {
  id: RegistryProfileId;
  /** Display name: "Docker Hub", "Amazon ECR". */
  name: string;
  /** Host names this row is for (lower case; a registry reference's domain, without port). */
  hosts: RegExp;
  /** Expected token realm and service (a `{host}` placeholder stands for the registry host). */
  realm?: string;
  service?: string;
  /** Basic auth on every request, no token server (ECR private). */
  basicOnly?: true;
  /** false: the token endpoint refuses the OAuth2 POST (go straight to GET). Default true. */
  tokenPost?: false;
  /** The status the token endpoint gives a wrong user/password when it is not 401. */
  badCredentialsStatus?: number;
  /** Credentials that work, by user name convention. */
  users?: UserConvention[];
  /** Said after a 401 and by `ferry login`: how people log in to this registry. */
  loginHint?: string;
  cloud?: CloudProvider;
  /** Default tag-list page size (entries per page when `n` is not sent). */
  tagPageSize?: number;
  /** Chunked uploads: smallest chunk but the last, largest PATCH body. */
  chunk?: { min?: number; max?: number };
  /** Cross-repository mount: 'yes', 'opt-in' (ECR's BLOB_MOUNTING), 'checks-existence' (GCR/AR). */
  mount?: 'yes' | 'opt-in' | 'checks-existence';
  /** Sends Docker Hub's `ratelimit-*` headers on manifest answers. */
  rateLimitHeaders?: true;
  /** Anonymous pulls of public repositories work. */
  anonymousPull?: boolean;
}

const MiB = 1024 * 1024;

/** gcr.io and Artifact Registry take the same credentials (one token service behind both). */
const GOOGLE = {
  users: [
    { user: 'oauth2accesstoken', secret: 'gcloud auth print-access-token' },
    { user: '_json_key', secret: 'a service-account key file (JSON)' },
    { user: '_json_key_base64', secret: 'the key file, base64' },
  ],
  loginHint: 'gcloud auth login (or GOOGLE_APPLICATION_CREDENTIALS=<service-account key>), or install docker-credential-gcloud',
} satisfies Partial<RegistryProfile>;

/** The table. Order matters only where host patterns overlap (none do). */
export const REGISTRY_PROFILES: readonly RegistryProfile[] = [
  {
    id: 'dockerhub', name: 'Docker Hub', hosts: /^(docker\.io|index\.docker\.io|registry-1\.docker\.io)$/,
    realm: 'https://auth.docker.io/token', service: 'registry.docker.io',
    users: [{ user: '<Docker ID>', secret: 'password or personal access token' }, { user: '<organization>', secret: 'organization access token' }],
    loginHint: 'ferry login docker.io -u <Docker ID> (a personal access token works as the password)',
    tagPageSize: 100, mount: 'yes', rateLimitHeaders: true, anonymousPull: true,
  },
  {
    id: 'ghcr', name: 'GitHub Container Registry', hosts: /^ghcr\.io$/,
    realm: 'https://ghcr.io/token', service: 'ghcr.io',
    users: [{ user: '<GitHub user>', secret: 'personal access token (classic) with read:packages / write:packages' }, { user: '<github.actor>', secret: 'GITHUB_TOKEN in Actions' }],
    loginHint: 'ferry login ghcr.io -u <GitHub user> with a classic personal access token (read:packages, write:packages)',
    tagPageSize: 100, chunk: { max: 4 * MiB }, mount: 'yes', anonymousPull: true,
  },
  {
    id: 'quay', name: 'Quay.io', hosts: /^quay\.io$/,
    realm: 'https://quay.io/v2/auth', service: 'quay.io',
    users: [{ user: '<user>', secret: 'password or encrypted password' }, { user: '<org>+<robot>', secret: 'robot token' }],
    loginHint: 'ferry login quay.io -u <user> (robot accounts: -u <org>+<robot> with the robot token)',
    tagPageSize: 50, mount: 'yes', anonymousPull: true,
  },
  {
    id: 'ecr', name: 'Amazon ECR', hosts: /^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.(amazonaws\.com(\.cn)?|on\.aws)$/,
    service: 'ecr.amazonaws.com', basicOnly: true, cloud: 'aws',
    users: [{ user: 'AWS', secret: 'the output of aws ecr get-login-password (valid 12 h)' }],
    loginHint: 'aws ecr get-login-password --region <region> | ferry login -u AWS --password-stdin <host>, or install docker-credential-ecr-login',
    chunk: { min: 5 * MiB, max: 20 * MiB }, mount: 'opt-in', anonymousPull: false,
  },
  {
    id: 'ecr-public', name: 'Amazon ECR Public', hosts: /^(public\.ecr\.aws|ecr-public\.aws\.com)$/,
    realm: 'https://public.ecr.aws/token/', service: 'public.ecr.aws', cloud: 'aws-public',
    users: [{ user: 'AWS', secret: 'the output of aws ecr-public get-login-password --region us-east-1' }],
    loginHint: 'aws ecr-public get-login-password --region us-east-1 | ferry login -u AWS --password-stdin public.ecr.aws',
    chunk: { min: 5 * MiB, max: 20 * MiB }, anonymousPull: true,
  },
  {
    id: 'acr', name: 'Azure Container Registry', hosts: /^[a-z0-9]+\.azurecr\.(io|cn|us)$/,
    realm: 'https://{host}/oauth2/token', service: '{host}', cloud: 'azure',
    users: [
      { user: '00000000-0000-0000-0000-000000000000', secret: 'ACR refresh token (az acr login --expose-token)' },
      { user: '<admin user or service principal id>', secret: 'password or client secret' },
      { user: '<repository token name>', secret: 'token password' },
    ],
    loginHint: 'az login, then ferry uses az acr login --expose-token; or ferry login <name>.azurecr.io -u <service principal id>',
    mount: 'yes', anonymousPull: false,
  },
  {
    id: 'gcr', name: 'Google Container Registry (Artifact Registry gcr.io repositories)', hosts: /^([a-z]+\.)?gcr\.io$/,
    realm: 'https://{host}/v2/token', service: '{host}', cloud: 'gcp',
    ...GOOGLE, mount: 'checks-existence', anonymousPull: true,
  },
  {
    id: 'artifact-registry', name: 'Google Artifact Registry', hosts: /^([a-z0-9-]+-docker\.pkg\.dev|docker\.[a-z0-9-]+\.rep\.pkg\.dev)$/,
    realm: 'https://{host}/v2/token', service: '{host}', cloud: 'gcp',
    ...GOOGLE, mount: 'checks-existence', anonymousPull: true,
  },
  {
    // Self-hosted: recognised by its challenge (service harbor-registry, realm …/service/token).
    id: 'harbor', name: 'Harbor', hosts: /(?!)/,
    realm: 'https://{host}/service/token', service: 'harbor-registry', tokenPost: false,
    users: [{ user: '<user>', secret: 'password or CLI secret' }, { user: 'robot$<project>+<name>', secret: 'robot secret' }],
    loginHint: "ferry login <harbor host> -u '<user>' (robot accounts: -u 'robot$<project>+<name>', quoted so the shell keeps the $)",
    mount: 'yes', anonymousPull: true,
  },
  {
    id: 'ngc', name: 'NVIDIA NGC', hosts: /^nvcr\.io$/,
    realm: 'https://nvcr.io/proxy_auth',
    users: [{ user: '$oauthtoken', secret: 'an NGC API key' }],
    loginHint: "ferry login nvcr.io -u '$oauthtoken' --password-stdin (the user name is literally $oauthtoken; the password is an NGC API key)",
    anonymousPull: true,
  },
  {
    id: 'icr', name: 'IBM Cloud Container Registry', hosts: /^((private\.)?([a-z]+2?\.)?icr\.io|registry\.bluemix\.net)$/,
    realm: 'https://{host}/oauth/token', service: 'registry', badCredentialsStatus: 400,
    users: [
      { user: 'iamapikey', secret: 'an IBM Cloud API key' },
      { user: 'iambearer', secret: 'an IAM access token (ibmcloud iam oauth-tokens)' },
      { user: 'iamrefresh', secret: 'an IAM refresh token' },
    ],
    loginHint: 'ferry login <region>.icr.io -u iamapikey --password-stdin (an IBM Cloud API key)',
    anonymousPull: false,
  },
];

function hostOnly(registry: string): string {
  const h = registry.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const c = h.lastIndexOf(':');
  return c >= 0 && /^\d+$/.test(h.slice(c + 1)) ? h.slice(0, c) : h;
}

/** The profile for a registry host (`docker.io`, `ghcr.io`, `x.azurecr.io`, `h:5000`), if any. */
export function profileFor(registry: string): RegistryProfile | undefined {
  const host = hostOnly(registry);
  return REGISTRY_PROFILES.find((p) => p.hosts.test(host));
}

/**
 * The profile a token challenge identifies, for registries found by what they send rather than
 * by name (Harbor runs under any host name): the host's own profile first, else Harbor when the
 * challenge's service is `harbor-registry` or its realm path is `/service/token`.
 */
export function profileForChallenge(registry: string, realm: string | undefined, service: string | undefined): RegistryProfile | undefined {
  const byHost = profileFor(registry);
  if (byHost && byHost.id !== 'harbor') return byHost;
  let path = '';
  try {
    path = realm ? new URL(realm).pathname : '';
  } catch {
    path = '';
  }
  if (service === 'harbor-registry' || path === '/service/token') return REGISTRY_PROFILES.find((p) => p.id === 'harbor');
  return byHost;
}

/** `{host}` in a profile's realm or service, filled in. */
export function profileValue(template: string | undefined, registry: string): string | undefined {
  return template?.replaceAll('{host}', hostOnly(registry));
}

/** The AWS region in an ECR host (`…dkr.ecr.us-east-1.amazonaws.com` → `us-east-1`). */
export function ecrRegion(registry: string): string | undefined {
  return /\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|on\.aws)$/.exec(hostOnly(registry))?.[1];
}

/** The registry name in an ACR host (`myreg.azurecr.io` → `myreg`). */
export function acrName(registry: string): string | undefined {
  return /^([a-z0-9]+)\.azurecr\.(?:io|cn|us)$/.exec(hostOnly(registry))?.[1];
}
