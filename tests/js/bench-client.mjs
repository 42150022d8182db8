// The client of tether-bench's `capnweb` workload: the capnweb package
// in Node timing the same calls against two servers, interleaved.
//
//   node bench-client.mjs OPS ws://tether/capnweb ws://node/capnweb
//
// For each server and operation: OPS timed operations, in rounds of 100
// alternating between the servers, after a warm-up. Prints one JSON line
// per server and operation: {"server", "op", "median_us", "p99_us"}.
//
// - null: `await api.null()`;
// - callback: `await api.callback(fn)`, the server calling fn(1) back;
// - chain4: `await api.step().step().step().done()`, four calls sent at
//   once, each on the result of the one before (pipelined).
import { newWebSocketRpcSession } from "capnweb";
import { WebSocket } from "ws";
globalThis.WebSocket ??= WebSocket;

const [ops, ...urls] = process.argv.slice(2);
const total = Number(ops);
const ROUND = 100;

const operations = {
  null: (api) => api.null(),
  callback: (api) => api.callback((x) => x),
  chain4: async (api) => {
    const a = api.step();
    const b = a.step();
    const c = b.step();
    const done = await c.done();
    for (const p of [a, b, c]) p[Symbol.dispose]();
    return done;
  },
};

const sessions = urls.map((url) => newWebSocketRpcSession(url));
const names = ["tether", "node"];
for (const api of sessions) {
  for (const op of Object.values(operations)) {
    for (let i = 0; i < 200; i++) await op(api);
  }
}

for (const [opName, op] of Object.entries(operations)) {
  const times = sessions.map(() => []);
  for (let done = 0; done < total; done += ROUND) {
    for (const [s, api] of sessions.entries()) {
      for (let i = 0; i < ROUND; i++) {
        const start = performance.now();
        await op(api);
        times[s].push((performance.now() - start) * 1000);
      }
    }
  }
  for (const [s, list] of times.entries()) {
    list.sort((x, y) => x - y);
    const at = (q) => list[Math.min(list.length - 1, Math.floor(q * list.length))];
    console.log(JSON.stringify({ server: names[s], op: opName, median_us: at(0.5), p99_us: at(0.99) }));
  }
}
for (const api of sessions) api[Symbol.dispose]();
