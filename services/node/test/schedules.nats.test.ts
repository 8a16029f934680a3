import { describeNats, useTestDatabase } from '@baton/testkit';
import { schedulesSuite } from './schedules.suite.js';

const db = useTestDatabase();

describeNats('scheduling with node processes on NATS', (natsUrl) => {
  schedulesSuite({ db, natsUrl });
});
