import type { StatusCounts } from '@baton/store';

export interface ProgressState {
  readonly submitted: number;
  readonly counts: StatusCounts;
  readonly retried: number;
  readonly finished: number;
  readonly bearer: { holder: string | null; term: number } | null;
}

/** One live line on a terminal; a line every two seconds elsewhere (CI logs, pipes). */
export class Progress {
  #last = 0;
  #drawn = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  render(s: ProgressState): void {
    const c = s.counts;
    const bar = this.#bar(s.finished / s.submitted);
    const who = s.bearer?.holder
      ? `bearer ${s.bearer.holder} (term ${s.bearer.term})`
      : 'no bearer (election)';
    const line = `${bar} ${s.finished}/${s.submitted}  running ${c.running + c.claimed}  completed ${c.completed}  retried ${s.retried}  dead ${c.dead_letter}  | ${who}`;
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[K${line}`);
      this.#drawn = true;
    } else if (Date.now() - this.#last >= 2000) {
      this.out.write(`${line}\n`);
      this.#last = Date.now();
    }
  }

  /** A message above the live line. */
  note(message: string): void {
    if (this.out.isTTY && this.#drawn) this.out.write('\r\x1b[K');
    this.out.write(`>> ${message}\n`);
  }

  done(): void {
    if (this.out.isTTY && this.#drawn) this.out.write('\n');
  }

  #bar(fraction: number): string {
    const width = 20;
    const full = Math.max(0, Math.min(width, Math.round(fraction * width)));
    return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
  }
}
