// The Node side of tether-bench's `capnweb` workload: a capnweb server
// over WebSocket (the `ws` package) with the same methods tether's
// serves, so one client can time both.
//
//   node bench-server.mjs      # prints `listening PORT`, serves until killed
import { WebSocket, WebSocketServer } from "ws";
import { newWebSocketRpcSession, RpcTarget } from "capnweb";

class Step extends RpcTarget {
  constructor(depth) { super(); this.depth = depth; }
  step() { return new Step(this.depth + 1); }
  done() { return this.depth; }
}

class Api extends RpcTarget {
  null() { return null; }
  async callback(fn) { return await fn(1); }
  step() { return new Step(1); }
}

// capnweb's transport reads WebSocket.CONNECTING: Node 20 has no global.
globalThis.WebSocket ??= WebSocket;

const server = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/capnweb" });
server.on("connection", (socket) => newWebSocketRpcSession(socket, new Api()));
server.on("listening", () => console.log(`listening ${server.address().port}`));
