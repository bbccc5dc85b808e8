import requests
from datetime import datetime, timedelta
class ArbotClient:
    def __init__(self, base_url="http://localhost:8080", api_key=None):
        self.base_url = base_url
        self.headers = {}
        if api_key:
            self.headers['X-API-Key'] = api_key
    def get_status(self):
        response = requests.get(f"{self.base_url}/api/v1/status", headers=self.headers)
        return response.json()
    def get_current_prices(self, symbol=None):
        params = {'symbol': symbol} if symbol else {}
        response = requests.get(
            f"{self.base_url}/api/v1/prices/current",
            params=params,
            headers=self.headers
        )
        return response.json()
    def get_trades(self, start_date=None, end_date=None, symbol=None, limit=100):
        params = {'limit': limit}
        if start_date:
            params['start_date'] = start_date.strftime('%Y-%m-%d')
        if end_date:
            params['end_date'] = end_date.strftime('%Y-%m-%d')
        if symbol:
            params['symbol'] = symbol
        response = requests.get(
            f"{self.base_url}/api/v1/trades",
            params=params,
            headers=self.headers
        )
        return response.json()
    def start_trading(self, mode="live"):
        response = requests.post(
            f"{self.base_url}/api/v1/trading/start",
            json={'mode': mode},
            headers=self.headers
        )
        return response.json()
    def stop_trading(self):
        response = requests.post(
            f"{self.base_url}/api/v1/trading/stop",
            headers=self.headers
        )
        return response.json()
# Usage example
client = ArbotClient(api_key="your-api-key")
# Get system status
status = client.get_status()
print(f"ArBot status: {status['status']}")
# Get recent trades
recent_trades = client.get_trades(
    start_date=datetime.now() - timedelta(days=1),
    limit=50
)
print(f"Found {len(recent_trades['trades'])} recent trades")
# Start trading
result = client.start_trading(mode="simulation")
print(f"Trading started: {result['success']}")
