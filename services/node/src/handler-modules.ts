/**
 * Loads the user's handler modules (the plugin model of seed 002): each
 * module exports `handlers` (a map of task type to a function, or to
 * `{ run, concurrency, timeoutMs }`), `services` (coordinated services that
 * run on the token bearer only: name -> `{ trigger, execute }`), and/or
 * `register(node)` for full control.
 *
 * @example
 * // handlers.js
 * export const handlers = {
 *   'email.send': async (ctx) => { await send(ctx.payload); },
 *   'report.build': { run: async (ctx) => build(ctx.payload), concurrency: 2, timeoutMs: 60_000 },
 * };
 */
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BatonNode, HandlerFn, HandlerOptions, ServiceDefinition } from '@baton/runtime';

type HandlerEntry = HandlerFn | (HandlerOptions & { run: HandlerFn });

interface HandlerModule {
  handlers?: Record<string, HandlerEntry>;
  services?: Record<string, ServiceDefinition>;
  register?: (node: BatonNode) => void | Promise<void>;
  default?: HandlerModule;
}

/** A handler module that cannot be loaded or registered: named, with the type at fault. */
export class HandlerModuleError extends Error {
  override readonly name = 'HandlerModuleError';
}

/**
 * Where a module name points: a path (relative to `cwd`), a file that
 * exists under `cwd` (`handlers/index.mjs`), or else a package name.
 */
export function moduleSpecifier(name: string, cwd: string): string {
  const isFile = statSync(resolve(cwd, name), { throwIfNoEntry: false })?.isFile() ?? false;
  if (name.startsWith('.') || isAbsolute(name) || isFile) {
    return pathToFileURL(resolve(cwd, name)).href;
  }
  return name;
}

/** Runs `register`, naming the module (and what it registered) in any error. */
function registering(where: string, register: () => void): void {
  try {
    register();
  } catch (error) {
    throw new HandlerModuleError(`BATON_HANDLERS: ${where}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

export async function loadHandlerModules(
  node: BatonNode,
  names: readonly string[],
  cwd: string,
): Promise<number> {
  let count = 0;
  for (const name of names) {
    let mod: HandlerModule;
    try {
      mod = (await import(moduleSpecifier(name, cwd))) as HandlerModule;
    } catch (error) {
      throw new HandlerModuleError(
        `BATON_HANDLERS: cannot load ${name}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    const m = mod.handlers || mod.services || mod.register ? mod : (mod.default ?? mod);
    if (!m.handlers && !m.services && !m.register) {
      throw new HandlerModuleError(
        `BATON_HANDLERS: ${name} exports none of "handlers", "services", "register"`,
      );
    }
    for (const [serviceName, definition] of Object.entries(m.services ?? {})) {
      registering(`${name}: service "${serviceName}"`, () => node.service(serviceName, definition));
      count++;
    }
    for (const [type, entry] of Object.entries(m.handlers ?? {})) {
      registering(`${name}: handler "${type}"`, () => {
        if (typeof entry === 'function') node.handle(type, entry);
        else {
          const { run, ...options } = entry;
          node.handle(type, run, options);
        }
      });
      count++;
    }
    if (m.register) {
      try {
        await m.register(node);
      } catch (error) {
        throw new HandlerModuleError(
          `BATON_HANDLERS: ${name}: register() failed: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
    }
  }
  return count;
}
