import type { Command } from 'commander';
import { authExplain, type AccessCheck, type AuthExplainResult } from '../../ops/auth-explain.js';
import type { CredentialInfo } from '../../registry/client.js';
import type { CliIO } from '../io.js';
import { describeRateLimit } from '../../registry/rate-limit.js';
import { document, rateLimitJson } from '../output/json.js';
import { runtimeFor } from '../runtime.js';

export function authCommands(program: Command, io: CliIO, signal: AbortSignal): void {
  const auth = program.command('auth').description('credential diagnostics');
  auth
    .command('explain')
    .description('say which credentials ferry would use for an image, what the registry challenged, and whether pull and push would be allowed (never prints a secret)')
    .argument('<reference>', 'image reference: ghcr.io/org/app:1.2, docker.io/library/alpine')
    .addHelpText('after', `
The pull check is a manifest HEAD (not counted by Docker Hub's rate limit); the push check opens
an upload session and deletes it at once, so nothing is written.

Examples:
  ferry auth explain ghcr.io/org/app:1.2
  ferry auth explain --json registry.example:5000/team/app | jq .push.allowed`)
    .action(async (reference: string, _opts: unknown, cmd: Command) => {
      const rt = await runtimeFor(cmd, io, signal);
      const r = await authExplain(reference, rt.ctx);
      if (rt.g.json) return rt.outJson(explainJson(r));
      rt.out(renderExplain(r));
    });
}

export function explainJson(r: AuthExplainResult) {
  const { rateLimit, registry, repository, ...rest } = r;
  return document('auth explain', { source: `${registry}/${repository}`, registry, repository, ...rest, ...(rateLimit ? { rateLimit: rateLimitJson(rateLimit) } : {}) });
}

function who(c: CredentialInfo): string {
  if (c.kind === 'anonymous') return `anonymous${c.source && c.source !== 'anonymous' ? ` — ${c.source.replace(/^anonymous \(|\)$/g, '')}` : ''}`;
  const kind = c.kind === 'basic' ? 'user/password' : c.kind === 'identity-token' ? 'identity token (OAuth2 refresh token)' : 'registry token (sent as is)';
  return `${kind}${c.username ? `, user ${JSON.stringify(c.username)}` : ''}${c.source ? `, from ${c.source}` : ''}`;
}

function access(a: AccessCheck): string[] {
  const verdict = a.allowed === true ? 'allowed' : a.allowed === false ? 'NOT allowed' : 'unknown';
  const lines = [`${verdict}${a.status !== undefined ? ` (HTTP ${a.status} to ${a.checkedBy})` : ` (${a.checkedBy})`}`];
  if (a.scopesAsked.length) lines.push(`  scopes asked:   ${a.scopesAsked.join(' ')}`);
  if (a.scopesAsked.length) lines.push(`  scopes granted: ${a.scopesGranted === null ? '(the token does not say)' : a.scopesGranted.join(' ') || '(none)'}`);
  if (a.reason) lines.push(`  why:            ${a.reason}`);
  return lines;
}

export function renderExplain(r: AuthExplainResult): string {
  const lines = [`Registry:    ${r.registry}${r.profile ? ` (${r.profile.name})` : ''}${r.apiHost !== r.registry ? `, API at ${r.apiHost}` : ''}`, `Repository:  ${r.repository}`];
  const same = JSON.stringify(r.credentials.pull) === JSON.stringify(r.credentials.push);
  if (same) lines.push(`Credentials: ${who(r.credentials.pull)}`);
  else lines.push(`Credentials: pull: ${who(r.credentials.pull)}`, `             push: ${who(r.credentials.push)}`);
  if (!r.challenge) lines.push('Challenge:   none (the registry asked for no authentication)');
  else if (r.challenge.scheme === 'basic') lines.push(`Challenge:   Basic${r.challenge.realm ? ` realm=${JSON.stringify(r.challenge.realm)}` : ''} (no token server: credentials go with every request)`);
  else lines.push(`Challenge:   ${r.challenge.scheme === 'bearer' ? 'Bearer' : r.challenge.scheme} realm=${JSON.stringify(r.challenge.realm ?? '')}${r.challenge.service ? ` service=${JSON.stringify(r.challenge.service)}` : ' (no service)'}`);
  const [p0, ...pRest] = access(r.pull);
  const [q0, ...qRest] = access(r.push);
  lines.push(`Pull:        ${p0}`, ...pRest, `Push:        ${q0}`, ...qRest);
  if (r.rateLimit) lines.push(`Rate limit:  ${describeRateLimit(r.rateLimit)}`);
  if (r.profile) {
    const p = r.profile;
    const facts = [
      p.realm && r.challenge?.realm && p.realm !== r.challenge.realm ? `expected realm ${p.realm}` : '',
      p.basicOnly ? 'Basic auth only' : '',
      p.tokenPost === false ? 'token endpoint takes GET only' : '',
      p.badCredentialsStatus ? `a wrong password gets HTTP ${p.badCredentialsStatus}` : '',
      p.cloud ? `cloud credentials: ${p.cloud}` : '',
      p.chunk ? `upload chunks ${p.chunk.min ? `≥ ${p.chunk.min / 1048576} MiB` : ''}${p.chunk.min && p.chunk.max ? ', ' : ''}${p.chunk.max ? `≤ ${p.chunk.max / 1048576} MiB` : ''}` : '',
      p.mount && p.mount !== 'yes' ? `mount: ${p.mount}` : '',
      p.tagPageSize ? `${p.tagPageSize} tags a page` : '',
      p.rateLimitHeaders ? 'publishes pull rate limits' : '',
    ].filter(Boolean);
    if (facts.length) lines.push(`Profile:     ${facts.join('; ')}`);
    if (p.users?.length) lines.push(`Users:       ${p.users.map((u) => `${u.user} (${u.secret})`).join('; ')}`);
    if (p.loginHint && (r.pull.allowed === false || r.push.allowed === false)) lines.push(`Log in:      ${p.loginHint}`);
  }
  return lines.join('\n');
}
