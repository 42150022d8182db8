// A Node capnweb server for tether's client (`tether::capnweb::connect`),
// run by tests/capnweb.rs:
//
//   node server.mjs      # prints `listening PORT`, serves until killed
import { WebSocket, WebSocketServer } from "ws";
import { newWebSocketRpcSession, RpcTarget } from "capnweb";

// capnweb's transport reads WebSocket.CONNECTING: Node 20 has no global.
globalThis.WebSocket ??= WebSocket;

class Counter extends RpcTarget {
  constructor(n) { super(); this.n = n; }
  increment() { return ++this.n; }
  get value() { return this.n; }
}

class Api extends RpcTarget {
  add(a, b) { return a + b; }
  greet(name) { return `Hello, ${name}!`; }
  echo(value) { return value; }
  counter(start) { return new Counter(start); }
  async callMeBack(fn, n) {
    const got = [];
    for (let i = 1; i <= n; i++) got.push(await fn(i));
    return got;
  }
  fail() { throw new TypeError("no good"); }
  never() { return new Promise(() => {}); }
}

const server = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/api" });
server.on("connection", (socket) => newWebSocketRpcSession(socket, new Api()));
server.on("listening", () => console.log(`listening ${server.address().port}`));
