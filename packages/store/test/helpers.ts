import { useTestDatabase } from '@baton/testkit';
import { afterAll, beforeAll } from 'vitest';
import { createStore, type Store, type StoreOptions } from '../src/index.js';

/** A store on this test file's own migrated database, closed after the file. */
export function useStore(options: Omit<StoreOptions, 'pool' | 'connection'> = {}): {
  readonly store: Store;
  readonly db: ReturnType<typeof useTestDatabase>;
} {
  const db = useTestDatabase();
  let store: Store | undefined;
  beforeAll(() => {
    store = createStore({ pool: db.pool({ max: 20 }), ...options });
  });
  afterAll(async () => {
    await store?.close();
  });
  return {
    get store() {
      if (!store) throw new Error('the store is opened in beforeAll');
      return store;
    },
    db,
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
