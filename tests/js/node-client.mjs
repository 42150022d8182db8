// The real capnweb client, in Node, against a tether server's Cap'n Web
// endpoint (tests/capnweb.rs starts the server and runs this).
//
//   node node-client.mjs http://127.0.0.1:PORT/capnweb
//
// Prints `ok <check>` per check passed and `FAIL <check>: <detail>` per
// one failed (exit status 1), then `done`.
import { newWebSocketRpcSession, newHttpBatchRpcSession, RpcTarget } from "capnweb";
import { WebSocket } from "ws";

// Node 20 has no WebSocket of its own; capnweb uses the global one.
globalThis.WebSocket ??= WebSocket;

const url = process.argv[2];
const wsUrl = url.replace(/^http/, "ws");

function check(name, passed, detail) {
  if (passed) {
    console.log(`ok ${name}`);
  } else {
    console.log(`FAIL ${name}: ${JSON.stringify(detail)}`);
    process.exitCode = 1;
  }
}

async function rejection(promise) {
  try {
    const value = await promise;
    return { resolved: value };
  } catch (err) {
    return err;
  }
}

class Recorder extends RpcTarget {
  constructor() { super(); this.seen = []; }
  record(item) { this.seen.push(item); return this.seen.length; }
}

async function overWebSocket() {
  const api = newWebSocketRpcSession(wsUrl);

  check("call", (await api.add(1, 2)) === 3, "add(1, 2)");
  check("property", (await api.label) === "tether", "label");
  const values = await api.echo([1, 2.5, "x", null, true, { k: [1n] }, new Uint8Array([0, 255])]);
  check("values", JSON.stringify(values.slice(0, 5)) === '[1,2.5,"x",null,true]'
    && values[5].k[0] === 1 && values[6] instanceof Uint8Array && values[6][1] === 255, values);
  check("big integers", (await api.echo(2n ** 60n)) === 2n ** 60n, "2^60");
  const when = new Date(Date.UTC(2026, 11, 4, 15, 12, 38, 250));
  const echoed = await api.echo(when);
  check("a Date goes and comes back", echoed instanceof Date && echoed.getTime() === when.getTime(), echoed);
  const next = await api.later(when, 1);
  check("a Date as a typed parameter and result", next instanceof Date
    && next.toISOString() === "2026-12-05T15:12:38.250Z", next);
  const invalid = await api.echo(new Date(NaN)).catch((e) => e);
  check("an invalid Date is a TypeError", invalid instanceof TypeError
    && /invalid Date/.test(invalid.message), invalid.message);

  const seen = [];
  const counted = await api.count_to(3, (i) => { seen.push(i); return i * 10; });
  check("callback in order", JSON.stringify(seen) === "[1,2,3]" && counted === 60, { seen, counted });

  const recorder = new Recorder();
  check("RpcTarget passed in", (await api.count_to_target(2, recorder)) === 2
    && JSON.stringify(recorder.seen) === "[1,2]", recorder.seen);

  await api.hold((word) => seen.push(word));
  check("callback held, called later", (await api.fire("later")) === 4 && seen[3] === "later", seen);
  await api.release_held();

  // (Node 20 has no `using`: disposed by hand.)
  const counter = await api.counter(5);
  check("object held", (await counter.increment()) === 6 && (await counter.increment()) === 7, "counter");
  check("object attribute", (await counter.value) === 7, "value");
  counter[Symbol.dispose]();

  // Sent without awaiting the first call: one round trip.
  const ten = api.counter(10);
  check("pipelining", (await ten.increment()) === 11, "counter(10).increment()");
  ten[Symbol.dispose]();
  const held = api.counter(20);
  const first = held.increment();
  const second = held.increment();
  check("pipelined calls keep their order", (await first) === 21 && (await second) === 22,
    "two increments");
  held[Symbol.dispose]();

  const divided = await rejection(api.divide(1, 0));
  check("error", divided instanceof Error && divided.message === "division by zero"
    && divided.type === "ValueError", { message: divided.message, type: divided.type });
  const bad = await rejection(api.add("one", 2));
  check("bad arguments", bad instanceof TypeError, bad.message);
  const denied = await rejection(api.secret());
  check("denied member", denied instanceof Error && /has no exposed member 'secret'/.test(denied.message)
    && !/hidden/.test(denied.message), denied.message);
  const callbackError = await rejection(api.count_to(2, () => { throw new RangeError("stop here"); }));
  check("error in a callback", callbackError instanceof Error
    && /stop here/.test(callbackError.message), callbackError.message);

  // Everything above was released: only the call asking is held.
  const tables = await api.tables();
  check("tables back to zero", tables.exports === 1 && tables.imports === 0, tables);

  api[Symbol.dispose]();
}

async function overHttpBatch() {
  const api = newHttpBatchRpcSession(url);
  // Awaited together: a batch sends what was awaited before it went.
  const [sum, counted] = await Promise.all([api.add(2, 3), api.counter(1).increment()]);
  check("batch", sum === 5 && counted === 2, { sum, counted });

  const again = newHttpBatchRpcSession(url);
  const refused = await rejection(again.count_to(1, () => 0));
  check("batch callbacks refused", refused instanceof Error
    && /use a WebSocket/.test(refused.message), refused.message);
}

await overWebSocket();
await overHttpBatch();
console.log("done");
