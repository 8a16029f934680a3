import { useTestDatabase } from '@baton/testkit';
import { describe } from 'vitest';
import { createPostgresBus } from '@baton/runtime';
import { faultSuite } from './faults.suite.js';

const db = useTestDatabase();

describe('node processes under faults, on the PostgreSQL bus (LISTEN/NOTIFY)', () => {
  faultSuite({
    db,
    natsUrl: undefined,
    openBus: () => createPostgresBus({ connectionString: db.url, poolSize: 2 }),
  });
});
