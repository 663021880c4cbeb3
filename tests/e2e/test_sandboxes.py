"""``connector sandbox``: the README's session against the standalone sandboxes, run as written.

The README section "Test your own integration against the sandboxes" is the single source: its ``sh``
blocks and its ``python`` block (zeep against Yuki's WSDL) are run in order as one bash script from the
project root, the ``python`` block through the project's interpreter. The test then checks what each part
printed. Other tests: Ctrl-C stops the command cleanly, ``--tool`` / ``--port`` choose the servers and
their ports, and each server answers as the service it stands for.
"""

from __future__ import annotations

import errno
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from connector.local.stack import PROJECT_ROOT
from connector.sandboxes import SANDBOX_TOOLS, parse_tools, start_sandboxes

README = PROJECT_ROOT / "README.md"
SECTION = "## Test your own integration against the sandboxes"
CONNECTOR = Path(sys.executable).parent / "connector"


def readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of the fenced ``sh`` and ``python`` blocks of the README's sandbox section."""
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else None]
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(sh|python)\n(.*?)```", section, re.S)]


def readme_script(env_file: Path) -> str:
    """The section as one bash script: the venv's commands, ``env_file`` for the README's /tmp file."""
    parts = ["set -euo pipefail", f"cd {PROJECT_ROOT}", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for language, code in readme_blocks():
        code = code.replace(".venv/bin/", f"{CONNECTOR.parent}/").replace("/tmp/sandboxes.env", str(env_file))
        if language == "python":
            parts.append("echo '--- python'")
            parts.append(f"set -a; . {env_file}; set +a")
            parts.append(f"{sys.executable} - <<'PYTHON_BLOCK'\n{code}PYTHON_BLOCK")
        else:
            parts.append(f"echo '--- {code.splitlines()[0][:60]}'")
            parts.append(code)
    return "\n".join(parts) + "\n"


def test_the_readme_session_runs_against_all_four_sandboxes(tmp_path):
    blocks = readme_blocks()
    assert [lang for lang, _ in blocks].count("python") == 1 and len(blocks) >= 5
    assert "connector sandbox --tool all" in blocks[0][1] and blocks[-1][1].startswith("kill %1")
    done = subprocess.run(["bash", "-c", readme_script(tmp_path / "sandboxes.env")], capture_output=True, text=True, timeout=120)
    out = done.stdout
    assert done.returncode == 0, f"the README session failed ({done.returncode}):\n{out}\n{done.stderr}"

    # All four served, each with its credentials; Ctrl-C (kill %1) stopped them cleanly.
    for name in ("Host product: http://127.0.0.1:", "Exact Online: http://127.0.0.1:", "Octopus: http://127.0.0.1:", "Yuki: http://127.0.0.1:"):
        assert name in out
    assert "sandboxes stopped" in out

    # Host product: JSON envelopes under "data".
    assert '"name":"Demo Exact Online BV"' in out.replace(": ", ":") and '"invoice_number"' in out

    # Exact: current/Me, $select/$top, __next paging over several pages, rate-limit headers.
    assert '"CurrentDivision":1' in out
    journals = [line for line in out.splitlines() if "/financial/Journals(guid'" in line]
    assert len(journals) == 1 and journals[0].count('"Code"') == 2 and journals[0].count('"Type"') == 2  # $select, $top=2
    pages = re.findall(r"page: ([^\n]*)", out)
    codes = [code for page in pages for code in re.findall(r'"Code":"(\d+)"', page)]
    assert len(pages) >= 2 and len(codes) == len(set(codes)) and "708000" in codes and all(c.startswith("70") for c in codes)
    assert all(len(re.findall(r'"Code"', page)) <= 5 for page in pages)
    headers = {line.split(":")[0].lower() for line in out.splitlines() if line.lower().startswith("x-ratelimit")}
    assert headers == {f"x-ratelimit-{h}" for h in ("limit", "remaining", "reset", "minutely-limit", "minutely-remaining", "minutely-reset")}

    # Octopus: the dossier list, a dossier token, VAT codes, the relation upserted and found.
    assert '"dossierKey":{"id":1001}' in out
    assert '"vatCodeKey"' in out or '"code"' in out
    assert '"externalRelationId":4242' in out and '"name":"Acme NV"' in out

    # Yuki: a session id by hand, the WSDL's operations, and zeep booking an invoice.
    assert re.search(r"<(\w+:)?AuthenticateResult>[0-9a-f-]{36}</(\w+:)?AuthenticateResult>", out)
    assert '<wsdl:operation name="ProcessSalesInvoices"' in out
    zeep_part = out.split("--- python", 1)[1]
    assert re.search(r"administration [0-9a-f-]{36} Demo Yuki BV", zeep_part)
    assert re.search(r"succeeded: 1 booking number: 2021\d+", zeep_part)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ctrl_c_stops_the_command_cleanly(tmp_path):
    env_file = tmp_path / "env"
    port = _free_port()
    process = subprocess.Popen([str(CONNECTOR), "sandbox", "--tool", "exact", "--port", str(port), "--env-file", str(env_file)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not env_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        values = dict(line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines())
        assert values["EXACT"] == f"http://127.0.0.1:{port}" and "HOST" not in values and "YUKI" not in values
        me = httpx.get(f"{values['EXACT']}/api/v1/current/Me")
        assert me.status_code == 401 and me.headers["WWW-Authenticate"].startswith("Bearer")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert "Traceback" not in output and "sandboxes stopped" in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/api/v1/current/Me", timeout=2)


def test_tools_and_ports():
    assert parse_tools(None) == SANDBOX_TOOLS == parse_tools(["all"])
    assert parse_tools(["yuki,host", "exact"]) == ("host", "exact", "yuki")
    with pytest.raises(ValueError, match="unknown sandbox 'sap'"):
        parse_tools(["sap"])
    for _attempt in range(10):  # another process may take port + 1 between the probe and the start
        port = _free_port()
        try:
            sandboxes = start_sandboxes(["octopus", "host"], port=port)
            break
        except OSError as error:
            assert error.errno == errno.EADDRINUSE and "in use" in str(error)
    else:  # pragma: no cover
        pytest.fail("no two consecutive free ports in ten tries")
    with sandboxes:
        assert sandboxes.urls == {"host": f"http://127.0.0.1:{port}", "octopus": f"http://127.0.0.1:{port + 1}"}
        env = sandboxes.env()
        assert set(env) >= {"HOST", "HOST_TOKEN", "HOST_ENTITY_EXACT", "HOST_ENTITY_OCTOPUS", "HOST_ENTITY_YUKI", "OCTOPUS", "OCTOPUS_API", "OCTOPUS_PASSWORD"}
        # The host product holds every sample document in each of the three company entities.
        listed = httpx.post(f"{env['HOST']}/invoices.list", headers={"Authorization": f"Bearer {env['HOST_TOKEN']}"}, json={"filter": {"department_id": env["HOST_ENTITY_OCTOPUS"]}, "page": {"size": 100}})
        credit = httpx.post(f"{env['HOST']}/creditNotes.list", headers={"Authorization": f"Bearer {env['HOST_TOKEN']}"}, json={"filter": {"department_id": env["HOST_ENTITY_OCTOPUS"]}, "page": {"size": 100}})
        assert len(listed.json()["data"]) + len(credit.json()["data"]) == len(sandboxes.documents) == len(list((PROJECT_ROOT / "sample_data" / "ubl").glob("*.xml")))
        wrong = httpx.post(f"{env['OCTOPUS_API']}/authentication", headers={"softwareHouseUuid": env["OCTOPUS_SOFTWARE_HOUSE"]}, json={"user": env["OCTOPUS_USER"], "password": "wrong"})
        assert wrong.status_code == 401 and set(wrong.json()) == {"errorCode", "errorMessage", "technicalInfo"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(sandboxes.urls["host"], timeout=2)


def test_a_taken_port_is_a_clear_error_not_an_exit(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{port}: the port is in use") as raised:
            start_sandboxes(["exact"], port=port)
        assert raised.value.errno == errno.EADDRINUSE
        done = subprocess.run([str(CONNECTOR), "sandbox", "--tool", "exact", "--port", str(port)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--port:" in done.stderr and "in use" in done.stderr and "Traceback" not in done.stderr


def test_exact_answers_429_with_the_rate_limit_headers(clock):
    with start_sandboxes(["exact"]) as sandboxes:
        box = sandboxes.sandboxes["exact"]
        token = box.administration.credentials["access_token"]
        with httpx.Client(base_url=box.url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}) as http:
            answers = [http.get("/api/v1/current/Me") for _ in range(61)]
        assert [a.status_code for a in answers[:60]] == [200] * 60
        over = answers[60]
        assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 0
        assert over.headers["X-RateLimit-Minutely-Remaining"] == "0"
        assert json.loads(over.text)["error"]["message"]["value"]
