"""Run the public NGSI-LD conformance suites against a local Qala and print pass counts per section.

    PYTHONPATH=src .venv/bin/python scripts/ngsi_conformance.py [--suite etsi|fiware|all]
        [--section NAME ...] [--json OUT.json] [--check BASELINE.json] [--record BASELINE.json]

The suites stay where they are (``../shared/peers`` or ``$QALA_PEERS``, read-only): ETSI's
Robot Framework suite runs from there with its variables overridden on the command line; FIWARE's
Jest suite runs with ``--rootDir`` there and its node modules from a cache directory. Qala runs
in a subprocess (uvicorn on a free loopback port) on a fresh migrated SQLite file in a temporary
folder, with an operator token that ``bearer_proxy.py`` (from the suites' folder) adds to every
request, since the suites send no credentials.

Tools, installed on first use from the registries: Robot Framework and its libraries (the ETSI
suite's ``requirements.txt``) in ``$QALA_CONFORMANCE_VENV`` (default ``.venv-conformance``), and
jest 24 + request in ``$QALA_CONFORMANCE_NODE`` (default ``.venv-conformance/node``). Each ETSI
section also gets a private Mosquitto (Debian's ``mosquitto``) for its MQTT notification tests.

``--check`` compares every counted section with the figures in a baseline file and exits 1 when
one drops below it (the ratchet); ``--record`` writes the counts into the baseline.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS = Path(os.environ.get("QALA_PEERS", REPO.parent / "shared" / "peers")).resolve()
if not PEERS.exists() and (REPO.parents[1] / "shared" / "peers").exists():
    PEERS = REPO.parents[1] / "shared" / "peers"  # a worktree under /work/wt/<name>
ETSI = PEERS / "ngsi-ld-test-suite-etsi"
FIWARE = PEERS / "ngsi-ld-testsuite-fiware"
VENV = Path(os.environ.get("QALA_CONFORMANCE_VENV", REPO / ".venv-conformance"))
NODE = Path(os.environ.get("QALA_CONFORMANCE_NODE", VENV / "node"))

# The sections of the ETSI suite counted in issue #21 (842 test cases; PurgeEntities,
# jsonldContext and DistributedOperations are left out as in the reference figures).
ETSI_SECTIONS = {
    "CommonBehaviours": "CommonBehaviours",
    "Consumption-Discovery": "ContextInformation/Consumption/Discovery",
    "Consumption-Entity": "ContextInformation/Consumption/Entity",
    "Consumption-TemporalEntity": "ContextInformation/Consumption/TemporalEntity",
    "Provision-BatchEntities": "ContextInformation/Provision/BatchEntities",
    "Provision-Entities": "ContextInformation/Provision/Entities",
    "Provision-EntityAttributes": "ContextInformation/Provision/EntityAttributes",
    "Provision-TemporalEntity": "ContextInformation/Provision/TemporalEntity",
    "Provision-TemporalEntityAttributes": "ContextInformation/Provision/TemporalEntityAttributes",
    "Subscription": "ContextInformation/Subscription",
    "ContextSource": "ContextSource",
}


SUITE_CONTEXTS = {
    "https://forge.etsi.org/rep/cim/ngsi-ld-test-suite/-/raw/develop/resources/jsonld-contexts/": str(
        ETSI / "resources" / "jsonld-contexts"
    ),
    "https://fiware.github.io/NGSI-LD_TestSuite/ldContext/": str(FIWARE / "ldContext"),
    # A few ETSI data files (the orderBy buildings, the join tests' Country, two subscriptions)
    # name the suite's context by its earlier address at Easy Global Market. That document is a
    # compound of the same eleven terms as the suite's ngsi-ld-test-suite.jsonld and the core
    # context v1.8 (github.com/easy-global-market/ngsild-api-data-models, ngsildTestSuite/), so
    # the suite's own compound context stands for it on a machine without network.
    "https://easy-global-market.github.io/ngsild-api-data-models/ngsildTestSuite/"
    "ngsildTestSuiteV1.8-compound.jsonld": str(
        ETSI / "resources" / "jsonld-contexts" / "ngsi-ld-test-suite-compound.jsonld"
    ),
}
"""Context URLs of the suites → their copies in the suites' folders."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"conformance: {url} did not answer within {seconds:.0f} s")


def ensure_robot() -> Path:
    robot = VENV / "bin" / "robot"
    if not robot.exists():
        print(f"conformance: installing Robot Framework into {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "pip"), "install", "--quiet"]
        subprocess.run([*pip, "-r", str(ETSI / "requirements.txt")], check=True)
    return robot


def ensure_jest() -> Path:
    jest = NODE / "node_modules" / ".bin" / "jest"
    if not jest.exists():
        print(f"conformance: installing jest into {NODE}", flush=True)
        NODE.mkdir(parents=True, exist_ok=True)
        (NODE / "package.json").write_text('{"name": "qala-conformance", "private": true}\n')
        # Only what the tests require (the suite's own devDependencies no longer resolve).
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "jest@24.9.0", "request@2.88.0"],
            cwd=NODE,
            check=True,
        )
    return jest


@contextmanager
def qala_server(folder: Path) -> Iterator[str]:
    """A Qala on a fresh SQLite store behind the bearer proxy; yields the proxy's base URL."""
    sys.path.insert(0, str(REPO / "src"))
    from qala.components.accounts.services import create_user, issue_token
    from qala.registry import prepare
    from qala.runtime import Context
    from qala.settings import Settings

    url = f"sqlite:///{folder / 'qala.sqlite'}"
    context = Context.from_settings(Settings(database_url=url, secret_key="conformance"))
    prepare(context)
    with context.database.transaction() as session:
        user = create_user(
            session, username="conformance", password="conformance-suite-run", role="operator"
        )
        token = issue_token(session, user)
    context.database.dispose()
    port, proxy_port = free_port(), free_port()
    env = {
        **os.environ,
        "QALA_DATABASE_URL": url,
        "QALA_SECRET_KEY": "conformance",
        # The suite's temporal pagination tests (6.3.10) expect 206 for 20 instances of an
        # attribute: the broker's limit is its own choice, 10 here (1000 by default).
        "QALA_OPERATE_TEMPORAL_INSTANCES": "10",
        "PYTHONPATH": str(REPO / "src"),
        # The suites' JSON-LD contexts are read from their own folders (their URLs point at
        # forge.etsi.org and fiware.github.io); nothing is fetched (Qala's default), so other
        # remote contexts define no term.
        "QALA_NGSI_CONTEXT_FILES": json.dumps(SUITE_CONTEXTS),
    }
    log = (folder / "qala.log").open("w")
    # h11 writes header names as the application spells them; uvicorn's httptools protocol
    # lower-cases them all, and ETSI's suite looks `Location` up case-sensitively.
    uvicorn = [
        sys.executable,
        "-m",
        "uvicorn",
        "--http",
        "h11",
        "--factory",
        "qala.api.app:create_app",
    ]
    server = subprocess.Popen(
        [*uvicorn, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proxy_env = {
        **os.environ,
        "BEARER_TOKEN": token,
        "UPSTREAM_PORT": str(port),
        "PROXY_PORT": str(proxy_port),
    }
    proxy = subprocess.Popen(
        [sys.executable, str(PEERS / "bearer_proxy.py")],
        env=proxy_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        wait_http(f"http://127.0.0.1:{proxy_port}/healthz")
        yield f"http://127.0.0.1:{proxy_port}"
    finally:
        for process in (proxy, server):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def _loopback_address_with_free(port: int) -> str:
    """A loopback address of the 127.0.0.0/8 block (all of it reaches this machine) whose
    ``port`` is free; the shared 127.0.0.1 is taken last."""
    for _attempt in range(50):
        host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        return host
    return "127.0.0.1"


@contextmanager
def mqtt_broker(folder: Path) -> Iterator[list[str]]:
    """A private Mosquitto for the suite's MQTT notification tests (058); yields the Robot
    variables that point the suite at it (none when Mosquitto is not installed).

    The tests connect to port 1883 of ``mqtt_broker_host`` (the port is written in the tests)
    and to ``mqtt_broker_non_default_port``; in the suite's own set-up a Docker container with
    Mosquitto is started per test. Here one broker listens on 1883 and a free port of a
    loopback address of its own, so it neither meets the machine's Mosquitto on 127.0.0.1:1883
    nor another run's broker. It admits anonymous clients as the suite's ``mosquitto.conf``
    does (the login in an endpoint URI is then accepted whatever it is; that Qala sends it is
    tested in tests/components/operate/test_ngsi_mqtt_notifications.py)."""
    if shutil.which("mosquitto") is None:
        print("conformance: mosquitto is not installed; the MQTT tests will fail", flush=True)
        yield []
        return
    host = _loopback_address_with_free(1883)
    with socket.socket() as probe:
        probe.bind((host, 0))
        other_port = int(probe.getsockname()[1])
    config = folder / "mosquitto.conf"
    config.write_text(
        "per_listener_settings false\nallow_anonymous true\npersistence false\n"
        f"listener 1883 {host}\nlistener {other_port} {host}\nuser {getpass.getuser()}\n",
        encoding="utf-8",
    )
    log = (folder / "mosquitto.log").open("w")
    broker = subprocess.Popen(
        ["mosquitto", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((host, 1883), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or broker.poll() is not None:
                    raise SystemExit(f"conformance: mosquitto did not start ({folder})") from None
                time.sleep(0.05)
        yield [
            "--variable",
            f"mqtt_broker_host:{host}",
            "--variable",
            f"mqtt_broker_non_default_port:{other_port}",
        ]
    finally:
        broker.terminate()
        broker.wait(10)
        log.close()


def robot_totals(output: Path) -> tuple[int, int, list[str]]:
    """(passed, failed, names of failed tests) from Robot's output.xml."""
    root = ET.parse(output).getroot()
    failed: list[str] = []
    passed = 0
    for test in root.iter("test"):
        status = test.find("status")
        if status is None:
            continue
        if status.get("status") == "PASS":
            passed += 1
        elif status.get("status") == "FAIL":
            failed.append(test.get("name", "?"))
    return passed, len(failed), failed


def run_etsi(sections: list[str], out: Path, timeout: int) -> dict[str, dict]:
    """Each section against its own fresh Qala, so that no section sees what another left."""
    robot = ensure_robot()
    results: dict[str, dict] = {}
    for name in sections:
        with tempfile.TemporaryDirectory(prefix="qala-conformance-") as work:
            results[name] = run_etsi_section(robot, name, Path(work), out, timeout)
    return results


def run_etsi_section(robot: Path, name: str, work: Path, out: Path, timeout: int) -> dict:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    folder = out / "etsi" / name
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with qala_server(work) as base, mqtt_broker(work) as mqtt_variables:
        command = [str(robot), "--outputdir", str(folder), "--report", "NONE", "--log", "NONE"]
        command += mqtt_variables
        for variable in ("url", "temporal_api_url"):
            command += ["--variable", f"{variable}:{base}/ngsi-ld/v1"]
        # The suite's own servers (notification receiver, context source, context server) listen
        # on fixed ports in its variables.py; free ones let two sections run on one machine at
        # once without stealing each other's notifications.
        for variable in ("notification_server_port", "context_source_port", "context_server_port"):
            command += ["--variable", f"{variable}:{free_port()}"]
        command.append(str(ETSI / "TP" / "NGSI-LD" / ETSI_SECTIONS[name]))
        try:
            with (folder / "console.txt").open("w") as console:
                subprocess.run(
                    command,
                    cwd=ETSI,
                    env=env,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                )
        except subprocess.TimeoutExpired:
            print(f"conformance: ETSI {name} stopped after {timeout} s", flush=True)
    seconds = round(time.monotonic() - started)
    output = folder / "output.xml"
    if not output.exists():
        print(f"ETSI {name}: no result ({seconds} s)", flush=True)
        return {"passed": 0, "failed": 0, "seconds": seconds, "error": "no output"}
    passed, failed, names = robot_totals(output)
    print(f"ETSI {name}: {passed} passed, {failed} failed ({seconds} s)", flush=True)
    return {"passed": passed, "failed": failed, "seconds": seconds, "failures": names}


def run_fiware(base: str, out: Path, timeout: int) -> dict[str, dict]:
    jest = ensure_jest()
    acc_port = free_port()
    acc = subprocess.Popen(
        [sys.executable, str(FIWARE / "accumulator" / "accumulator.py")],
        env={**os.environ, "WEB_APP_PORT": str(acc_port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    folder = out / "fiware"
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "jest.json"
    env = {
        **os.environ,
        "TEST_ENDPOINT": base,
        "ACC_ENDPOINT": f"http://127.0.0.1:{acc_port}",
        "NOTIFY_ENDPOINT": f"http://127.0.0.1:{acc_port}/acc",
        "NODE_PATH": str(NODE / "node_modules"),
    }
    started = time.monotonic()
    try:
        wait_http(f"http://127.0.0.1:{acc_port}/")
        cache = str(folder / "cache")
        jest_options = ["--rootDir", str(FIWARE), "--runInBand", "--ci", "--json"]
        subprocess.run(
            [str(jest), *jest_options, "--outputFile", str(report), "--cacheDirectory", cache],
            cwd=FIWARE,
            env=env,
            stdout=(folder / "console.txt").open("w"),
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        print(f"conformance: FIWARE suite stopped after {timeout} s", flush=True)
    finally:
        acc.terminate()
        acc.wait(10)
    seconds = round(time.monotonic() - started)
    if not report.exists():
        return {"all": {"passed": 0, "failed": 0, "seconds": seconds, "error": "no report"}}
    data = json.loads(report.read_text())
    passed: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    failures: dict[str, list[str]] = {}
    for suite in data.get("testResults", []):
        section = Path(suite["name"]).resolve().relative_to(FIWARE).parts[0]
        for test in suite.get("assertionResults", []):
            if test.get("status") == "passed":
                passed[section] += 1
            else:
                failed[section] += 1
                failures.setdefault(section, []).append(test.get("fullName", "?"))
    results = {}
    for section in sorted(set(passed) | set(failed)):
        results[section] = {
            "passed": passed[section],
            "failed": failed[section],
            "failures": failures.get(section, []),
        }
        print(f"FIWARE {section}: {passed[section]} passed, {failed[section]} failed", flush=True)
    return results


def check(results: dict[str, dict[str, dict]], baseline_file: Path) -> list[str]:
    """Sections whose pass count fell below the recorded figure."""
    baseline = json.loads(baseline_file.read_text())
    drops = []
    for suite, sections in results.items():
        for name, counts in sections.items():
            recorded = baseline.get(suite, {}).get(name)
            if recorded is not None and counts["passed"] < recorded["passed"]:
                drops.append(f"{suite} {name}: {counts['passed']} < {recorded['passed']}")
    return drops


def record(results: dict[str, dict[str, dict]], baseline_file: Path) -> None:
    baseline = json.loads(baseline_file.read_text()) if baseline_file.exists() else {}
    for suite, sections in results.items():
        for name, counts in sections.items():
            baseline.setdefault(suite, {})[name] = {
                "passed": counts["passed"],
                "total": counts["passed"] + counts["failed"],
            }
    baseline_file.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=("etsi", "fiware", "all"), default="all")
    parser.add_argument("--section", action="append", choices=sorted(ETSI_SECTIONS))
    parser.add_argument("--json", type=Path, help="write the counts and failed test names here")
    parser.add_argument("--check", type=Path, help="fail when a count drops below this baseline")
    parser.add_argument("--record", type=Path, help="write the counts into this baseline")
    parser.add_argument("--out", type=Path, help="keep Robot/Jest output here (else a temp dir)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per section")
    args = parser.parse_args(argv)
    if not PEERS.exists():
        print(f"conformance: no suites at {PEERS} (set QALA_PEERS)", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="qala-conformance-out-"))
    results: dict[str, dict[str, dict]] = {}
    try:
        if args.suite in ("etsi", "all"):
            chosen = args.section or list(ETSI_SECTIONS)
            sections = [name for name in ETSI_SECTIONS if name in chosen]  # the recorded order
            results["etsi"] = run_etsi(sections, out, args.timeout)
        if args.suite in ("fiware", "all"):
            with (
                tempfile.TemporaryDirectory(prefix="qala-conformance-") as work,
                qala_server(Path(work)) as base,
            ):
                results["fiware"] = run_fiware(base, out, args.timeout)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    for suite, sections in results.items():
        passed = sum(c["passed"] for c in sections.values())
        total = passed + sum(c["failed"] for c in sections.values())
        print(f"{suite.upper()} total: {passed} passed of {total}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.record:
        record(results, args.record)
    if args.check:
        drops = check(results, args.check)
        for drop in drops:
            print(f"conformance: RATCHET {drop}", file=sys.stderr)
        if drops:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
