class ArbotClient {
  constructor(baseUrl = 'http://localhost:8080', apiKey = null) {
    this.baseUrl = baseUrl;
    this.headers = {
      'Content-Type': 'application/json'
    };
    if (apiKey) {
      this.headers['X-API-Key'] = apiKey;
    }
  }
  async request(method, endpoint, data = null) {
    const config = {
      method,
      headers: this.headers
    };
    if (data) {
      config.body = JSON.stringify(data);
    }
    const response = await fetch(`${this.baseUrl}${endpoint}`, config);
    return await response.json();
  }
  async getStatus() {
    return await this.request('GET', '/api/v1/status');
  }
  async getCurrentPrices(symbol = null) {
    const query = symbol ? `?symbol=${symbol}` : '';
    return await this.request('GET', `/api/v1/prices/current${query}`);
  }
  async getTrades(options = {}) {
    const params = new URLSearchParams();
    Object.entries(options).forEach(([key, value]) => {
      if (value !== null && value !== undefined) {
        params.append(key, value);
      }
    });
    const query = params.toString() ? `?${params.toString()}` : '';
    return await this.request('GET', `/api/v1/trades${query}`);
  }
  async startTrading(mode = 'live') {
    return await this.request('POST', '/api/v1/trading/start', { mode });
  }
  async stopTrading() {
    return await this.request('POST', '/api/v1/trading/stop');
  }
}
// Usage example
const client = new ArbotClient('http://localhost:8080', 'your-api-key');
// Get system status
client.getStatus().then(status => {
  console.log(`ArBot status: ${status.status}`);
});
// Get current prices
client.getCurrentPrices('BTCUSDT').then(prices => {
  console.log('Current BTC prices:', prices);
});
// WebSocket connection
const ws = new WebSocket('ws://localhost:8080/api/v1/ws');
ws.onopen = () => {
  ws.send(JSON.stringify({
    type: 'subscribe',
    channel: 'signals'
  }));
};
ws.onmessage = (event) => {
  const data = JSON.parse(event.data);
  if (data.type === 'signal') {
    console.log('New arbitrage signal:', data.data);
  }
};
