#!/usr/bin/env node
// Validate an AsyncAPI document (JSON, or YAML) with the AsyncAPI project's own
// parser, `@asyncapi/parser` (pinned in scripts/asyncapi/package.json).
// The Rust tests call this script.
//
// Install (run from the repository root). `npm ci` reads package.json and
// package-lock.json from the install prefix, so copy both there first:
//
//   mkdir -p target/asyncapi
//   cp scripts/asyncapi/package.json scripts/asyncapi/package-lock.json target/asyncapi/
//   npm ci --prefix target/asyncapi --ignore-scripts --no-audit --no-fund
//
// (`--ignore-scripts` skips the one install script in the tree, the
// @scarf/scarf telemetry postinstall hook. The parser does not need it.)
//
// Run:
//
//   ERP_ASYNCAPI_MODULES=target/asyncapi node scripts/asyncapi/validate.mjs FILE [--warnings-as-errors]
//
// ERP_ASYNCAPI_MODULES is the install prefix, the directory that holds
// node_modules/. If it is not set, <repo>/target/asyncapi is used.
//
// Every diagnostic (severity, code, message, JSON path, line:col) goes to stderr.
// A one-line summary goes to stdout.
//
// Exit codes:
//   0  no diagnostic of severity error (0); warnings, infos and hints are still printed
//   1  at least one error (or, with --warnings-as-errors, at least one warning)
//   2  usage error (bad arguments, or FILE cannot be read)
//   3  @asyncapi/parser is not installed under ERP_ASYNCAPI_MODULES
//      (tests may treat this as "skip")

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SEVERITY = ['error', 'warning', 'info', 'hint'];

function usage(msg) {
  if (msg) process.stderr.write(`validate.mjs: ${msg}\n`);
  process.stderr.write('usage: node validate.mjs FILE [--warnings-as-errors]\n');
  process.exit(2);
}

const args = process.argv.slice(2);
let warningsAsErrors = false;
const files = [];
for (const a of args) {
  if (a === '--warnings-as-errors') warningsAsErrors = true;
  else if (a === '-h' || a === '--help') usage();
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else files.push(a);
}
if (files.length !== 1) usage('expected exactly one FILE');
const file = path.resolve(files[0]);

let text;
try {
  text = readFileSync(file, 'utf8');
} catch (err) {
  usage(`cannot read ${file}: ${err.message}`);
}

// Resolve @asyncapi/parser from the install prefix, not from this script's
// directory. The CommonJS build is used: the package's ESM build has
// extension-less relative imports that Node's ESM loader cannot resolve.
const scriptDir = path.dirname(fileURLToPath(import.meta.url));
const modulesDir = path.resolve(
  process.env.ERP_ASYNCAPI_MODULES || path.join(scriptDir, '..', '..', 'target', 'asyncapi'),
);
const requireFromPrefix = createRequire(path.join(modulesDir, 'noop.js'));
let Parser;
let parserVersion = '?';
try {
  ({ Parser } = requireFromPrefix('@asyncapi/parser'));
  try {
    parserVersion = requireFromPrefix('@asyncapi/parser/package.json').version;
  } catch {
    // only used for the summary line
  }
} catch (err) {
  process.stderr.write(
    `validate.mjs: cannot load @asyncapi/parser from ${modulesDir}: ${err.message}\n` +
      'install it as described at the top of scripts/asyncapi/validate.mjs\n',
  );
  process.exit(3);
}

const parser = new Parser();
// parse() runs the same Spectral validation as validate() and then the
// post-validation steps (traits, payload schema parsing), which can report
// further diagnostics.
const { document, diagnostics } = await parser.parse(text, { source: file });

const counts = [0, 0, 0, 0];
for (const d of diagnostics) {
  const sev = SEVERITY[d.severity] ?? `severity-${d.severity}`;
  if (counts[d.severity] !== undefined) counts[d.severity] += 1;
  const p = Array.isArray(d.path) && d.path.length ? d.path.join('.') : '(root)';
  const pos = d.range?.start ? ` @${d.range.start.line + 1}:${d.range.start.character + 1}` : '';
  process.stderr.write(`${sev} [${d.code}] ${d.message} at ${p}${pos}\n`);
}

const failed = counts[0] > 0 || document === undefined || (warningsAsErrors && counts[1] > 0);
process.stdout.write(
  `${failed ? 'INVALID' : 'VALID'}: ${file} (@asyncapi/parser ${parserVersion}): ` +
    `${counts[0]} error(s), ${counts[1]} warning(s), ${counts[2]} info, ${counts[3]} hint(s)\n`,
);
// exitCode (not process.exit) so buffered stderr/stdout are flushed first.
process.exitCode = failed ? 1 : 0;
