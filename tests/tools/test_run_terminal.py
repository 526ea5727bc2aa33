"""Issue 37 "Look": `spendwatch run` keeps its terminal for the window table and the alerts."""

from __future__ import annotations

import logging
import logging.config
from pathlib import Path

import pytest

from streams.cli import quiet_logging, run_log_file
from streams.settings import load_settings
from streams.tools.simulator import print_if_changed
from streams.worker.logs import logging_config


def test_the_window_table_is_printed_only_when_it_changed(capsys):
    printed: list[str] = []
    assert print_if_changed(["  search/chat-api 04:16"], printed)
    assert not print_if_changed(["  search/chat-api 04:16"], printed)
    assert not print_if_changed([], printed)
    assert print_if_changed(["  search/chat-api 04:17"], printed)
    out = capsys.readouterr().out
    assert out.count("last complete window") == 2 and "04:16" in out and "04:17" in out


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level


def test_at_the_default_level_start_up_lines_go_to_the_log_file_and_warnings_to_the_terminal(
        tmp_path: Path, capsys, restore_logging):
    log_file = tmp_path / "run.log"
    logging.config.dictConfig(quiet_logging(logging_config("text", "info"), str(log_file)))
    logging.getLogger("faust.worker").info("Starting...")
    logging.getLogger("spendwatch").warning("something is wrong")
    logging.getLogger("mode.timers").warning("Timer report_idle is overlapping (interval=0.1 runtime=0.83)")
    err = capsys.readouterr().err
    assert "Starting..." not in err and "something is wrong" in err and "overlapping" not in err
    text = log_file.read_text()
    assert "Starting..." in text and "something is wrong" in text and "overlapping" in text


def test_where_alerts_print_to_the_console_their_log_line_stays_in_the_file(tmp_path: Path, capsys,
                                                                            restore_logging):
    log_file = tmp_path / "run.log"
    logging.config.dictConfig(quiet_logging(logging_config("text", "info"), str(log_file), alerts_printed=True))
    logging.getLogger("spendwatch.agents").warning("alert %s %s: %s", "flash_spike", "firing", "15x")
    logging.getLogger("spendwatch.agents").warning("delivery is failing")
    err = capsys.readouterr().err
    assert "flash_spike" not in err and "delivery is failing" in err
    assert "alert flash_spike firing: 15x" in log_file.read_text()


def test_the_run_log_file_sits_beside_the_data_dir_and_is_skipped_at_other_levels(tmp_path: Path):
    settings = load_settings(data_dir=str(tmp_path / "var" / "spendwatch"))
    assert run_log_file(settings, "info") == str(tmp_path / "var" / "spendwatch-run.log")
    assert run_log_file(settings, "debug") is None
