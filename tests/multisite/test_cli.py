"""`custodian edge` and `custodian centre` refuse what they cannot run with one line and exit 2, before
anything starts."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from custodian.cli import app
from multisite.demo_sites import demo_sites


def test_edge_refuses_a_hub_that_is_not_host_and_port(tmp_path: Path) -> None:
    site_file = demo_sites(1)[0].write(tmp_path)
    result = CliRunner().invoke(app, ["edge", str(site_file), "--hub", "nowhere", "--state", str(tmp_path / "e")])
    assert result.exit_code == 2
    assert "expected HOST:PORT" in result.output
    assert not (tmp_path / "e").exists(), "nothing was started or written"


def test_edge_and_centre_refuse_a_missing_site_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    edge = CliRunner().invoke(app, ["edge", missing, "--hub", "127.0.0.1:7422"])
    centre = CliRunner().invoke(app, ["centre", "--site", missing, "--db", f"sqlite:///{tmp_path / 'c.db'}"])
    assert edge.exit_code == centre.exit_code == 2
    assert "no such file" in edge.output and "no such file" in centre.output


def test_centre_refuses_a_bad_site_distance(tmp_path: Path) -> None:
    site_file = demo_sites(1)[0].write(tmp_path)
    result = CliRunner().invoke(
        app, ["centre", "--site", str(site_file), "--db", f"sqlite:///{tmp_path / 'c.db'}", "--site-distance", "a,b"]
    )
    assert result.exit_code == 2 and "expected SITE,SITE,METRES" in result.output


def test_edge_and_centre_refuse_half_a_link_tls_setup(tmp_path: Path) -> None:
    site_file = demo_sites(1)[0].write(tmp_path)
    cert = tmp_path / "site.pem"
    cert.write_text("not checked before the set is complete")
    edge = CliRunner().invoke(app, ["edge", str(site_file), "--hub", "127.0.0.1:7422", "--state", str(tmp_path / "e"),
                                    "--link-cert", str(cert), "--link-key", str(cert)])
    centre = CliRunner().invoke(app, ["centre", "--site", str(site_file), "--db", f"sqlite:///{tmp_path / 'c.db'}",
                                      "--state", str(tmp_path / "c"), "--link-cert", str(cert),
                                      "--link-key", str(cert), "--link-ca", str(tmp_path / "missing-ca.pem")])
    assert edge.exit_code == centre.exit_code == 2
    assert "--link-cert, --link-key and --link-ca together" in edge.output
    assert "missing-ca.pem: no such file" in centre.output
    assert not (tmp_path / "e").exists() and not (tmp_path / "c").exists(), "nothing was started or written"
