"""Published reports: the JSON report's schema, mails routed to maintainers
(``--format email --by-maintainer``), the output directory's safety, and
``nofslint report`` re-rendering a saved run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from fixture_support import FIXTURES

from nofslint.cli.app import main
from nofslint.frontend.outdir import MANIFEST
from nofslint.kernel import maintainers as mnt

MAINTAINERS = """\
DEMOFS FILE SYSTEM
M:	Dee Mo <dee@example.org>
R:	Rev Iewer <rev@example.org>
L:	linux-demofs@lists.example.org
S:	Maintained
F:	fs/demofs/

LIBPATH HELPERS
M:	Lib Rary <lib@example.org>
L:	libpath@lists.example.org
S:	Maintained
F:	fs/libpath/

OLD BLOCK LIB
L:	blk@lists.example.org
S:	Orphan
F:	fs/libblk/

WQ FILE SYSTEM
M:	Wanda Queue <wanda@example.org>
S:	Supported
F:	fs/wqfs/

DRIVERS
M:	Dri Ver <driver@example.org>
L:	drivers@lists.example.org
S:	Maintained
F:	drivers/

THE REST
M:	Linus Torvalds <torvalds@linux-foundation.org>
L:	linux-kernel@vger.kernel.org
S:	Buried alive in reporters
F:	*
F:	*/
"""


def make_routed(dest: Path) -> Path:
    """Three fixture trees in one, with a MAINTAINERS: fs/pathfs is nobody's."""
    for rule in ("nofail-in-reclaim", "wq-flush-reclaim", "backing-io-noio"):
        shutil.copytree(FIXTURES / rule / "linux-6.12", dest, dirs_exist_ok=True)
    (dest / "MAINTAINERS").write_text(MAINTAINERS)
    return dest


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_routed(tmp_path_factory.mktemp("routed") / "linux")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def nofslint(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command in its own process (the attack tests)."""
    return subprocess.run([sys.executable, "-m", "nofslint", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def schema() -> dict:
    text = (resources.files("nofslint") / "schemas" / "nofslint-report.schema.json").read_text()
    return json.loads(text)


@pytest.fixture(scope="module")
def run_json(routed: Path) -> dict:
    result = invoke("check", str(routed), "--format", "json", "-j", "1")
    assert result.exit_code == 1
    return json.loads(result.stdout)


# -- JSON ---------------------------------------------------------------------------------

def test_json_report_grows_and_validates(run_json: dict) -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    jsonschema.Draft7Validator(schema()).validate(run_json)
    assert run_json["files"] > 0 and "nofail-in-reclaim" in run_json["run"]["rules"]
    assert run_json["maintainers"]["file"].endswith("MAINTAINERS")
    by_path = {f["path"]: f["owner"] for f in run_json["findings"]}
    assert by_path["fs/demofs/inode.c"]["section"] == "DEMOFS FILE SYSTEM"
    assert by_path["fs/pathfs/super.c"]["section"] is None  # only THE REST: unmaintained
    chained = [f for f in run_json["findings"] if f["path"] == "fs/pathfs/super.c"]
    assert any(f["owner"]["chain"] == ["LIBPATH HELPERS"] for f in chained)
    sections = run_json["maintainers"]["sections"]
    assert sections["DEMOFS FILE SYSTEM"]["maintainers"] == ["Dee Mo <dee@example.org>"]


def test_old_report_still_valid(run_json: dict) -> None:
    """The schema only grows: a report without the new keys is valid and loads."""
    old = {k: run_json[k] for k in ("version", "kernel_version", "trees", "findings", "errors")}
    old["findings"] = [{k: v for k, v in f.items() if k != "owner"} for f in old["findings"]]
    jsonschema.Draft7Validator(schema()).validate(old)


def test_plain_tree_has_no_routing(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "nofail-in-reclaim" / "linux-6.12", tmp_path / "t")
    doc = json.loads(invoke("check", str(tmp_path / "t"), "--format", "json").stdout)
    jsonschema.Draft7Validator(schema()).validate(doc)
    assert "maintainers" not in doc and all("owner" not in f for f in doc["findings"])


# -- mails --------------------------------------------------------------------------------

def parse(path: Path):
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert not msg.defects, (path, msg.defects)
    for name, value in msg.items():
        assert not getattr(value, "defects", ()), (path, name, value.defects)
    return msg


def addresses(value: str | None) -> list[str]:
    return [a.lower() for _, a in getaddresses([value or ""]) if a]


@pytest.fixture(scope="module")
def mails(routed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mails") / "out"
    result = invoke("check", str(routed), "--format", "email", "--by-maintainer", "-o",
                    str(out), "-j", "1")
    assert result.exit_code == 1, result.output
    assert "wrote" in result.stderr and "git send-email" in result.stderr
    return out


def test_one_mail_per_section(mails: Path, run_json: dict) -> None:
    sections = {f["owner"]["section"] for f in run_json["findings"]}
    names = sorted(p.name for p in mails.glob("*.eml"))
    expected = sorted("unmaintained.eml" if s is None
                      else re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") + ".eml"
                      for s in sections)
    assert names == expected
    assert (mails / MANIFEST).read_text().splitlines()[1:] == names


def test_mail_headers_and_body(mails: Path, run_json: dict) -> None:
    msg = parse(mails / "demofs-file-system.eml")
    n = sum(1 for f in run_json["findings"] if f["owner"]["section"] == "DEMOFS FILE SYSTEM")
    assert msg["Subject"] == f"[nofslint] DEMOFS FILE SYSTEM: {n} memory-reclaim findings (v6.12)"
    assert addresses(msg["To"]) == ["dee@example.org"]
    cc = addresses(msg["Cc"])
    # R: and L: of the section, THE REST's list, then the orphaned library a chain enters
    assert cc == ["rev@example.org", "linux-demofs@lists.example.org",
                  "linux-kernel@vger.kernel.org", "blk@lists.example.org"]
    assert "torvalds@linux-foundation.org" not in cc
    assert msg["From"] and msg["Message-ID"] and parsedate_to_datetime(msg["Date"])
    assert msg["In-Reply-To"] is None and msg["References"] is None  # each mail stands alone
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    body = msg.get_content()
    assert body.count("[nofail-in-reclaim]") == n
    assert "Call chain:" in body and "[ops table] super_operations.evict_inode" in body
    assert re.search(r"=> \w+\(\) allocates with __GFP_NOFAIL", body)  # the last step's note
    why = [line for line in body.splitlines() if "Why it matters:" in line]
    assert len(why) == n
    assert "\n-- \nTo reproduce, at the top of the tree:\n" in body
    assert "[per-file-ignores]" in body and "--baseline" in body
    assert all(len(line.encode()) <= 998 for line in body.splitlines())


def test_long_subject_stays_one_line() -> None:
    from nofslint.output.mail import Mail
    subject = "[nofslint] " + "VERY LONG SECTION NAME " * 5 + ": 3 memory-reclaim findings (v6.12)"
    raw = Mail("x.eml", "S", ["A <a@example.org>"], [], subject, []).render("hi\n", "n <n@x.org>")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert msg["Subject"] == subject and f"Subject: {subject}\n".encode() in raw


def test_unmaintained_mail(mails: Path) -> None:
    msg = parse(mails / "unmaintained.eml")
    assert msg["Subject"].startswith("[nofslint] unmaintained files: ")
    assert addresses(msg["To"]) == ["linux-kernel@vger.kernel.org"]
    # the chains from fs/pathfs into the library: its maintainer and list in Cc:
    assert {"lib@example.org", "libpath@lists.example.org"} <= set(addresses(msg["Cc"]))
    assert "fs/pathfs/super.c" in msg.get_content()


def test_recipients_are_get_maintainers(mails: Path, routed: Path, run_json: dict) -> None:
    """Every finding's file: what get_maintainer.pl's rules name is in its mail."""
    book, mailmap = mnt.for_tree(routed)
    for f in run_json["findings"]:
        section = f["owner"]["section"]
        name = ("unmaintained.eml" if section is None
                else re.sub(r"[^a-z0-9]+", "-", section.lower()).strip("-") + ".eml")
        msg = parse(mails / name)
        people, lists = mnt.recipients(book.match(f["path"]), mailmap)
        wanted = {a.lower() for _, a in getaddresses(people + lists)}
        assert wanted <= set(addresses(msg["To"]) + addresses(msg["Cc"])), f["path"]


def test_email_usage_errors(routed: Path, tmp_path: Path) -> None:
    r = invoke("check", str(routed), "--format", "email", "-o", str(tmp_path / "m"))
    assert r.exit_code == 2 and "--by-maintainer" in r.output
    r = invoke("check", str(routed), "--format", "email", "--by-maintainer")
    assert r.exit_code == 2 and "-o DIR" in r.output
    r = invoke("check", str(routed), "--by-maintainer")
    assert r.exit_code == 2 and "goes with --format email" in r.output
    r = invoke("check", str(routed), "--format", "html", "--html-source-url", "https://x/")
    assert r.exit_code == 2 and "{path}" in r.output


def test_email_needs_maintainers(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "nofail-in-reclaim" / "linux-6.12", tmp_path / "t")
    r = invoke("check", str(tmp_path / "t"), "--format", "email", "--by-maintainer",
               "-o", str(tmp_path / "m"))
    assert r.exit_code == 2 and "no MAINTAINERS" in r.output
    assert not (tmp_path / "m").exists()


# -- the output directory, attacked from a real process -----------------------------------

ARGS = ("--format", "email", "--by-maintainer", "--no-cache", "-j", "1")


def test_symlinked_directory_refused(routed: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "out").symlink_to(target)
    r = nofslint("check", str(routed), *ARGS, "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "symbolic link" in r.stderr
    assert list(target.iterdir()) == []


def test_foreign_directory_refused(routed: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    r = nofslint("check", str(routed), *ARGS, "-o", str(out))
    assert r.returncode == 2 and "did not write" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (out / "notes.txt").unlink()
    (out / MANIFEST).write_text("forged\n")  # not a manifest nofslint wrote
    r = nofslint("check", str(routed), *ARGS, "-o", str(out))
    assert r.returncode == 2 and sorted(p.name for p in out.iterdir()) == [MANIFEST]


def test_regular_file_refused(routed: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("keep\n")
    r = nofslint("check", str(routed), *ARGS, "-o", str(out))
    assert r.returncode == 2 and out.read_text() == "keep\n"


def test_rerun_replaces_only_its_own(routed: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert nofslint("check", str(routed), *ARGS, "-o", str(out)).returncode == 1
    first = sorted(p.name for p in out.glob("*.eml"))
    victim = tmp_path / "victim"
    victim.write_text("not a mail\n")
    planted = out / first[0]
    planted.unlink()
    planted.symlink_to(victim)  # a link planted under a mail's name: replaced, not followed
    r = nofslint("check", str(routed), *ARGS, "-o", str(out), "--select", "wq-flush-reclaim")
    assert r.returncode == 1, r.stderr
    assert victim.read_text() == "not a mail\n"
    second = sorted(p.name for p in out.glob("*.eml"))
    assert set(second) < set(first) and "removed" in r.stderr  # stale mails of the last run
    assert all(not (out / n).is_symlink() for n in second)
    assert not any(p.name.endswith(".nofslint") for p in out.iterdir())


# -- nofslint report ----------------------------------------------------------------------

def test_report_rerenders(run_json: dict, tmp_path: Path) -> None:
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(run_json))
    again = invoke("report", str(saved), "--format", "json")
    assert again.exit_code == 0 and json.loads(again.stdout) == run_json
    text = invoke("report", str(saved))
    assert text.exit_code == 0
    assert text.stdout.splitlines()[-1].startswith(f"Found {len(run_json['findings'])} findings")
    sarif = json.loads(invoke("report", str(saved), "--format", "sarif").stdout)
    assert len(sarif["runs"][0]["results"]) == len(run_json["findings"])
    out = tmp_path / "mails"
    r = invoke("report", str(saved), "--format", "email", "--by-maintainer", "-o", str(out))
    assert r.exit_code == 0 and (out / "demofs-file-system.eml").is_file()
    html = invoke("report", str(saved), "--format", "html").stdout
    assert html.count('<svg class="chain"') == len(run_json["findings"])


def test_report_routes_an_old_run(run_json: dict, routed: Path, tmp_path: Path) -> None:
    """A report saved without routing is routed by the MAINTAINERS of the tree it names."""
    old = {k: run_json[k] for k in ("version", "kernel_version", "trees", "findings", "errors")}
    old["findings"] = [{k: v for k, v in f.items() if k != "owner"} for f in old["findings"]]
    saved = tmp_path / "old.json"
    saved.write_text(json.dumps(old))
    doc = json.loads(invoke("report", str(saved), "--format", "json").stdout)
    assert [f["owner"] for f in doc["findings"]] == [f["owner"] for f in run_json["findings"]]
    assert doc["files"] is None  # not recorded: not made up


@pytest.mark.parametrize(("content", "message"), [
    ("{", "not JSON"), ("[]", "not a nofslint JSON report"),
    ('{"kernel_version": null, "findings": [{"rule": 1}]}', "not a nofslint JSON report"),
])
def test_report_bad_input(tmp_path: Path, content: str, message: str) -> None:
    saved = tmp_path / "bad.json"
    saved.write_text(content)
    r = invoke("report", str(saved), "--format", "html")
    assert r.exit_code == 2 and message in r.output
    r = invoke("report", str(tmp_path / "missing.json"))
    assert r.exit_code == 2 and "cannot read" in r.output


def test_python_m_records_the_command(routed: Path, tmp_path: Path) -> None:
    r = nofslint("check", str(routed), "--format", "json", "--no-cache", "-j", "1",
                 "--select", "wq-flush-reclaim", "-o", str(tmp_path / "r.json"))
    assert r.returncode == 1
    run = json.loads((tmp_path / "r.json").read_text())["run"]
    assert run["command"][:3] == ["nofslint", "check", str(routed)]
    assert run["reproduce"] == "nofslint check . --no-cache -j 1 --select wq-flush-reclaim"
    assert os.path.isabs(run["command"][2])
    # a directory of the tree, named from elsewhere: relative to the top of the tree
    r = nofslint("check", str(routed / "fs" / "wqfs"), "--format", "json", "--no-cache",
                 "-o", str(tmp_path / "r.json"))
    run = json.loads((tmp_path / "r.json").read_text())["run"]
    assert run["reproduce"] == "nofslint check fs/wqfs --no-cache"


def test_routing_is_time_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A K: pattern that passes the checks but backtracks over a file's text: the run
    goes on without subsystems, saying why."""
    import nofslint.cli.report as publish

    monkeypatch.setattr(publish, "ROUTE_TIME_LIMIT", 1.0)
    tree = make_routed(tmp_path / "linux")
    with (tree / "MAINTAINERS").open("a") as fh:
        fh.write("\nSLOW\nM:\tS <s@example.org>\nK:\ta.*a.*a.*a.*QQQ\n")
    with (tree / "fs" / "demofs" / "inode.c").open("a") as fh:
        fh.write("/* " + "a" * 20000 + " */\n")
    r = invoke("check", str(tree), "--format", "json", "--maintainers-keywords", "-j", "1")
    assert r.exit_code == 1 and "took over 1 s" in r.stderr
    assert "maintainers" not in json.loads(r.stdout)
