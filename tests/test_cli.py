"""The ``vbinfer`` command: argument handling and the network demo end to end."""

import json

import pytest

from vbinfer.cli import BENCHMARKS, DEFAULT_WORKFLOW, WORKFLOWS, build_parser, main


def test_demo_default_and_workflows():
    args = build_parser().parse_args(["demo"])
    assert args.workflow == DEFAULT_WORKFLOW
    assert set(WORKFLOWS) == {"eeg", "mvar", "field", "sweep", "network"}


def test_unknown_workflow_is_rejected(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["demo", "nope"])
    assert exc.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_bench_names(capsys):
    assert build_parser().parse_args(["bench"]).names == []
    assert build_parser().parse_args(["bench", "sht", "network"]).names == ["sht", "network"]
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark(s) ['nope']" in capsys.readouterr().err
    assert set(BENCHMARKS) >= {"network", "sht", "inference"}


def test_option_that_does_not_apply_is_an_error(tmp_path, capsys):
    assert main(["demo", "network", "--backend", "nuts", "--out", str(tmp_path)]) == 2
    assert "--backend does not apply" in capsys.readouterr().err


def test_network_demo_writes_its_files(tmp_path, capsys):
    assert main(["demo", "network", "--quick", "--no-progress", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "vbinfer workflow: network" in text and "node_steps_per_s" in text
    for name in ("simulation.npz", "timeseries.png", "fc.png", "report.json"):
        assert (tmp_path / name).stat().st_size > 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["metrics"]["regions"] == 84 and report["metrics"]["diverged"] is False
    assert report["metrics"]["steps"] == 8000
