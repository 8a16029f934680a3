import 'vitest';

/** Values the global setup hands to every test file through `inject`. */
declare module 'vitest' {
  export interface ProvidedContext {
    batonPg: { adminUrl: string; template: string; source: string };
    batonNats: { url: string | null; source: string; reason: string | null };
  }
}
