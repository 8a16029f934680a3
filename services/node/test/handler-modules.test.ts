import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { moduleSpecifier } from '../src/handler-modules.js';

const cwd = mkdtempSync(join(tmpdir(), 'baton-modules-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

it('a module name is a path when it looks like one or names a file under the working directory, else a package', () => {
  mkdirSync(join(cwd, 'handlers'));
  writeFileSync(join(cwd, 'handlers', 'index.mjs'), 'export const handlers = {};');
  const file = pathToFileURL(join(cwd, 'handlers', 'index.mjs')).href;
  expect(moduleSpecifier('./handlers/index.mjs', cwd)).toBe(file);
  expect(moduleSpecifier('handlers/index.mjs', cwd)).toBe(file);
  expect(moduleSpecifier(join(cwd, 'handlers', 'index.mjs'), cwd)).toBe(file);
  // A directory of that name does not hide the package.
  expect(moduleSpecifier('handlers', cwd)).toBe('handlers');
  expect(moduleSpecifier('@acme/handlers', cwd)).toBe('@acme/handlers');
});
