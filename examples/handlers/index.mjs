// Example handler module (the plugin model): the stock image loads the modules
// named in BATON_HANDLERS. Each exports `handlers`: task type -> function, or
// { run, concurrency, timeoutMs }.

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });

export const handlers = {
  // Echoes its payload back as the task's result.
  echo: async (ctx) => ctx.payload,

  // A slow task that honours cancellation, timeouts and shutdown through ctx.signal.
  'report.build': {
    run: async (ctx) => {
      await sleep(ctx.payload?.ms ?? 1000, ctx.signal);
      return { built: true, attempt: ctx.attempt };
    },
    concurrency: 4,
    timeoutMs: 60_000,
  },
};
