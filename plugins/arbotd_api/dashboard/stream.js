// The live stream: /api/v1/ws with its auth message, the three channels, and a
// reconnect of its own after any drop, backing off up to MAX_BACKOFF_MS (the server
// rate-limits WebSocket handshakes per address, so hammering it would only lock us out).

const CHANNELS = ["prices", "signals", "trades"];
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 15000;

export class Stream {
  // handlers: {price(data), signal(data), trade(data), state(stream), unauthorized(msg)}
  constructor(tokenOf, handlers) {
    this.tokenOf = tokenOf;
    this.handlers = handlers;
    this.socket = null;
    this.state = "closed"; // "connecting", "open" (subscribed), "closed"
    this.lastMessageAt = 0; // Date.now() of the last message of any kind
    this.connectedAt = 0;
    this.connections = 0; // successful (re)connections
    this.drops = 0;
    this.retryAt = 0;
    this.messages = 0;
    this.closeReason = "";
    this._backoff = FIRST_BACKOFF_MS;
    this._timer = null;
    this._stopped = true;
  }

  start() {
    this._stopped = false;
    this._connect();
  }

  stop() {
    this._stopped = true;
    clearTimeout(this._timer);
    if (this.socket) this.socket.close(1000, "signed out");
    this.socket = null;
    this._set("closed");
  }

  _set(state) {
    this.state = state;
    this.handlers.state(this);
  }

  _connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let socket;
    try {
      socket = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    } catch (err) {
      this._retry(String(err));
      return;
    }
    this.socket = socket;
    this._set("connecting");
    socket.onopen = () => {
      const token = this.tokenOf();
      if (token) socket.send(JSON.stringify({ type: "auth", token }));
      else this._subscribe();
    };
    socket.onmessage = (event) => this._receive(event.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (event.code === 1008 && /auth|token|revoked|Invalid/i.test(event.reason)) {
        this._set("closed");
        this.handlers.unauthorized(event.reason);
        return;
      }
      this._retry(event.reason || `connection closed (${event.code})`);
    };
  }

  _subscribe() {
    for (const channel of CHANNELS) {
      this.socket.send(JSON.stringify({ type: "subscribe", channel }));
    }
    this.connections += 1;
    this.connectedAt = Date.now();
    this.lastMessageAt = Date.now();
    this._backoff = FIRST_BACKOFF_MS;
    this.closeReason = "";
    this._set("open");
  }

  _receive(raw) {
    let message;
    try { message = JSON.parse(raw); } catch { return; }
    this.lastMessageAt = Date.now();
    this.messages += 1;
    switch (message.type) {
      case "price_update": this.handlers.price(message.data); break;
      case "signal": this.handlers.signal(message.data); break;
      case "trade_update": this.handlers.trade(message.data); break;
      case "authenticated": this._subscribe(); break;
      default: break; // subscribed/unsubscribed/error: nothing to show
    }
  }

  _retry(reason) {
    this.closeReason = reason;
    if (this._stopped) return;
    this.drops += 1;
    const delay = this._backoff;
    this._backoff = Math.min(this._backoff * 2, MAX_BACKOFF_MS);
    this.retryAt = Date.now() + delay;
    this._set("closed");
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), delay);
  }
}
