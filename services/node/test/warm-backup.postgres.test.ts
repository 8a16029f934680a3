import { useTestDatabase } from '@baton/testkit';
import { describe } from 'vitest';
import { warmBackupSuite } from './warm-backup.suite.js';

const db = useTestDatabase();

describe('warm backup on the PostgreSQL bus', () => {
  warmBackupSuite({ db, natsUrl: undefined });
});
