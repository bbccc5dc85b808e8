"""Write ``contrib/data/sample-quotes-krw.csv.gz``: ten minutes of the simulated venues
with the KRW venue (``[simulation.krw]``), as ``arbotd record`` would have recorded them
(the KRW venue's prices in KRW, with its USDTKRW rate market).

    .venv/bin/python contrib/tools/make_krw_sample.py [OUT]

The same code and seed always write the same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from arbotd_replay.quotefile import QuoteFileWriter
from arbotd_sim.config import KrwVenueConfig, SimulationConfig
from arbotd_sim.market import VenueSimulator
from arbotd_sim.won import KrwVenueSimulator

SECONDS = 600
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
START = 1_795_555_078.0  # a fixed epoch: the file does not depend on when it is made


def main(out: Path) -> None:
    config = SimulationConfig(seed=7, krw=KrwVenueConfig(enabled=True))
    venues = [VenueSimulator(config, name, SYMBOLS) for name in config.venues]
    simulators: list[VenueSimulator | KrwVenueSimulator] = [
        *venues, KrwVenueSimulator(config, SYMBOLS)]
    rate = config.updates_per_second
    count = len(simulators)
    writer = QuoteFileWriter(out, reorder_seconds=0.0)
    for tick in range(int(SECONDS * rate)):
        for index, simulator in enumerate(simulators):
            # Staggered like the daemon's feeds (SimVenue's phase).
            stamp = START + (tick + index / count) / rate
            for quote in simulator.step(stamp):
                writer.write(quote)
    writer.close()
    print(f"{out}: {writer.written} quotes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else
         Path(__file__).resolve().parents[1] / "data" / "sample-quotes-krw.csv.gz")
