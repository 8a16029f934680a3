import { useTestDatabase } from '@baton/testkit';
import { describe } from 'vitest';
import { schedulesSuite } from './schedules.suite.js';

const db = useTestDatabase();

describe('scheduling with node processes on the PostgreSQL bus', () => {
  schedulesSuite({ db, natsUrl: undefined });
});
