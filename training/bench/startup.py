"""How long a client command takes to start and answer: `semantic-enhance models` against a running daemon,
beside the floor of any Python client (the interpreter with numpy; with numpy and OpenCV), measured in the
same run, best of --repeat, wall time of whole processes.

    python -m training.bench.startup [--repeat 7] [--markdown]

Target (issue 14): `models` in at most 0.3 s on the 2-core machine; the client imports neither torch nor
the server (tests/test_seam.py checks the imports, this measures the time).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from backend.spawn import spawn_daemon


def best_wall(command, env, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    script = os.path.join(os.path.dirname(sys.executable), "semantic-enhance")
    with tempfile.TemporaryDirectory() as tmp, spawn_daemon(tmp) as daemon:
        env = daemon.env()
        rows = [("python -c 'import numpy'", best_wall([sys.executable, "-c", "import numpy"], env, args.repeat)),
                ("python -c 'import numpy, cv2'", best_wall([sys.executable, "-c", "import numpy, cv2"], env, args.repeat)),
                ("python -m backend.cli models", best_wall([sys.executable, "-m", "backend.cli", "models"], env, args.repeat))]
        if os.path.exists(script):
            rows.append(("semantic-enhance models", best_wall([script, "models"], env, args.repeat)))
    floor = rows[1][1]
    if args.markdown:
        print("| command | wall s | / numpy+OpenCV floor |\n|---|---|---|")
        for name, seconds in rows:
            print("| `%s` | %.3f | %.2fx |" % (name, seconds, seconds / floor))
    else:
        for name, seconds in rows:
            print("%-36s %6.3f s  %5.2fx the numpy+OpenCV floor" % (name, seconds, seconds / floor))


if __name__ == "__main__":
    main()
