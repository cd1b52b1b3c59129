"""`mailer bench send` end to end, small: real worker processes, Redis and an SMTP sink, on scratch
data. Only what does not depend on timing is checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"sizes", "naive", "ratio_to_naive", "min_ratio_to_ceiling", "max_cpu_ratio_to_ceiling", "peak_worker_rss_mb",
        "sink", "load_average"}
SIZE_KEYS = {"recipients", "pipeline_msgs_per_s", "ceiling_msgs_per_s", "ratio_to_ceiling", "pipeline_cpu_us_per_msg",
             "ceiling_cpu_us_per_msg", "cpu_ratio_to_ceiling", "deliveries_recorded", "sink_received", "duplicates"}


def test_bench_send_reports_every_member_recorded_once_at_each_size(tmp_path):
    """Two sizes in one run (each a campaign to that many members, the members added between
    them): each size's figures, every member recorded once, nothing received twice."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    env.update(MAILER_INSTANCE_PATH=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "mailer", "bench", "send", "--recipients", "200,350", "--workers", "1",
                           "--baseline-sample", "150", "--naive-sample", "50", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert KEYS <= result.keys()
    assert [size["recipients"] for size in result["sizes"]] == [200, 350]
    for size in result["sizes"]:
        assert SIZE_KEYS <= size.keys()
        n = size["recipients"]
        assert size["deliveries_recorded"] == n and size["sink_received"] == n and size["duplicates"] == 0
        assert size["baseline_received"] == 2 * 150  # the ceiling before and after the send
        assert size["pipeline_msgs_per_s"] > 0 and size["ceiling_msgs_per_s"] > 0
        assert size["pipeline_cpu_us_per_msg"] > 0 and size["ceiling_cpu_us_per_msg"] > 0
    assert result["naive"]["sample"] == 50 and result["naive"]["received"] == 50
    assert result["peak_worker_rss_mb"] > 0


def test_bench_ingest_stores_and_processes_every_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    env.update(MAILER_INSTANCE_PATH=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "mailer", "bench", "ingest", "--messages", "40", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"ingest_msgs_per_s", "bare_parse_msgs_per_s", "ratio_to_bare_parse", "cpu_us_per_msg",
            "cpu_ratio_to_bare_parse"} <= result.keys()
    assert result["cpu_us_per_msg"] > result["bare_parse_cpu_us_per_msg"] > 0
    assert (result["messages"], result["processed"], result["failed"]) == (40, 40, 0)


def test_bench_scale_times_every_page_on_seeded_data(tmp_path):
    """`mailer bench scale` at a tiny size: it seeds, signs in, and every page answers 200 with its
    query count; the last line is the JSON the README quotes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    env.update(MAILER_INSTANCE_PATH=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "mailer", "bench", "scale", "--members", "600", "--deliveries", "1500",
                           "--campaigns", "3", "--inbound", "400", "--longest-thread", "120", "--audit", "300",
                           "--meetings", "30", "--repeat", "2", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["sizes"]["members"] == 600 and result["sizes"]["deliveries"] == 1500
    assert len(result["load_average"]) == 3
    pages = result["databases"]["sqlite"]
    assert {"members_first", "members_deep", "members_last", "member_search_email", "segment_count",
            "campaign_list", "campaign_page", "inbox_search_no_match", "long_thread", "meetings_list"} <= pages.keys()
    for name, figures in pages.items():
        assert figures["status"] == 200, name
        assert 0 < figures["p50_ms"] <= figures["p95_ms"], name
        assert figures["queries"] >= 1, name


def test_bench_start_times_the_real_start_job_at_a_given_size(tmp_path):
    """`mailer bench start` at a tiny size: exactly the asked number of recipients get a row, in
    batches of BATCH_SIZE (2500), every batch queued, each run on the same data (its rows removed
    after it); wall and CPU per run, and the statements' times."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    env.update(MAILER_INSTANCE_PATH=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "mailer", "bench", "start", "--recipients", "5500", "--deliveries",
                           "3000", "--runs", "2", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["recipients"], result["earlier_deliveries"], result["runs"]) == (5500, 3000, 2)
    sqlite = result["databases"]["sqlite"]
    assert len(sqlite["runs"]) == 2 and sqlite["median_wall_s"] > 0 and sqlite["median_cpu_s"] > 0
    for run in sqlite["runs"]:
        assert (run["outcome"], run["recipients"], run["batches"], run["jobs_queued"]) == ("started", 5500, 3, 3)
        assert any(s["sql"].startswith("INSERT INTO deliveries") for s in run["statements"])
