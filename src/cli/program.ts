import { Command } from 'commander';
import { VERSION } from '../version.js';
import { inspectCommand } from './commands/inspect.js';
import { pullCommand } from './commands/pull.js';
import { tagsCommand } from './commands/tags.js';
import { copyCommand } from './commands/copy.js';
import { tagCommands } from './commands/tag.js';
import { loginCommands } from './commands/login.js';
import { authCommands } from './commands/auth.js';
import { configCommands } from './commands/config.js';
import { ratelimitCommand } from './commands/ratelimit.js';
import { cacheCommands } from './commands/cache.js';
import { exportCommand } from './commands/export.js';
import type { CliIO } from './io.js';
import { addGlobalOptions } from './options.js';

/** Builds the commander program (no globals, so tests can build many). */
export function buildProgram(io: CliIO, signal: AbortSignal): Command {
  const program = new Command('ferry');
  program
    .description('Move container images between registries and local files, fast and verified.')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`ferry: ${s.replace(/^error: /, '')}`),
    });
  addGlobalOptions(program);
  inspectCommand(program, io, signal);
  tagsCommand(program, io, signal);
  pullCommand(program, io, signal);
  copyCommand(program, io, signal);
  tagCommands(program, io, signal);
  loginCommands(program, io, signal);
  authCommands(program, io, signal);
  configCommands(program, io, signal);
  ratelimitCommand(program, io, signal);
  cacheCommands(program, io, signal);
  exportCommand(program, io, signal);
  program.addHelpText('after', `
Examples:
  ferry inspect alpine:3.20
  ferry tags ghcr.io/org/app
  ferry pull ubuntu:24.04 -o ubuntu.tar                 # docker-archive for docker/podman load, Apptainer
  ferry pull --all-platforms ghcr.io/org/app:1.2 oci:./layouts/app
  ferry push app.tar registry.example:5000/team/app:1.0
  ferry copy quay.io/org/tool:v2 registry.internal/mirror/tool:v2
  echo "$TOKEN" | ferry tags --username me --password-stdin registry.example/team/app
  ferry ratelimit                                       # Docker Hub pull budget (HEAD only: costs no pull)

Locations:
  REF                      a registry image: ubuntu, ghcr.io/org/app:1.2, host:5000/ns/app@sha256:…
  docker://REF             the same, skopeo style
  oci:DIR[:tag]            an OCI image layout directory
  oci-archive:FILE[:tag]   a tar of an OCI layout
  docker-archive:FILE[:name:tag|@N]
                           docker save / docker load format (also read by podman, skopeo, Apptainer)

Credentials come from --creds / --username --password-stdin (the one registry of the command;
--src-creds / --dest-creds per side when there are two), or --authfile FILE, or with --keychain
the OS keychain (ferry login --keychain), else docker's config (DOCKER_CONFIG or
~/.docker/config.json: auths, credHelpers, credsStore), then podman's auth.json, then for ECR,
GCR/Artifact Registry and ACR the cloud's own CLI (--no-cloud-auth: not), else anonymous.
ferry auth explain REF shows which one is used and what the registry grants.

Exit status: 0 ok, 1 other, 2 usage or bad input, 3 authentication/permission,
4 not found in the registry, 5 network/registry, 6 verification failed, 7 unsupported,
8 local I/O or disk space, 9 blocked by registries.conf, 130 interrupted, 141 stdout/stderr closed (e.g. | head).
4 is only ever the registry's answer (no such repository, tag, manifest, blob or platform);
a local path that does not exist or cannot be read or written is 8, and a local layout or
archive that is malformed or does not hold the image named is 2.
With --json a failure prints {"error": {"code": "E_…", "message", "hint", "exitCode"}} on
stdout; the document format is in docs/json.md.`);
  for (const c of program.commands) {
    c.exitOverride().configureOutput(program.configureOutput());
    c.showSuggestionAfterError(true);
  }
  return program;
}
