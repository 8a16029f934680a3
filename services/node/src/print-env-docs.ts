import { envTable } from './env-docs.js';

process.stdout.write(`${envTable()}\n`);
