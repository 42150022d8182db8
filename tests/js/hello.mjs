// A Node client of the `capnweb` example (cargo run --example capnweb):
//   node tests/js/hello.mjs http://127.0.0.1:7003/capnweb
import { newWebSocketRpcSession } from "capnweb";
import { WebSocket } from "ws";
globalThis.WebSocket ??= WebSocket;                    // Node 20 has none built in

const url = (process.argv[2] ?? "http://127.0.0.1:7003/capnweb").replace(/^http/, "ws");
const api = newWebSocketRpcSession(url);
console.log(await api.add(1, 2));                       // 3
console.log(await api.greet("JavaScript"));             // Hello, JavaScript!
await api.count_to(3, (i) => console.log(`callback ${i}`));
console.log(await api.counter(41).increment());         // 42, one round trip (pipelined)
try { await api.divide(1, 0); } catch (err) { console.log(`${err.type}: ${err.message}`); }
api[Symbol.dispose]();
