"""Progress everyone can read (cnnarch.progress): a bar on a terminal, dated lines in a log."""

import re
import time

from cnnarch import progress as P

DATED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_log_gets_a_dated_line_with_rate_and_eta_every_interval():
    lines, clock = [], Clock()
    bar = P.LogLines(10, "epoch 1/2", "img", scale=100, write=lines.append, interval=15, clock=clock)
    for _ in range(3):  # 300 images in 10 s: no line yet
        clock.t += 10 / 3
        bar.update(1, loss="2.3")
    assert lines == []
    clock.t = 20.0
    bar.update(1, loss="2.1")  # 400 of 1000 images after 20 s: 20 img/s, 600 left: 30 s
    assert len(lines) == 1 and DATED.match(lines[0])
    assert lines[0][20:] == "epoch 1/2: 400/1,000 img (40%), 20 img/s, 0:20 elapsed, ETA 0:30, loss 2.1"
    clock.t = 50.0
    for _ in range(6):
        bar.update(1)
    bar.close()  # the end, once more, with the whole phase's rate
    assert lines[-1][20:] == "epoch 1/2 done: 1,000/1,000 img (100%), 20 img/s, 0:50 elapsed, loss 2.1"


def test_a_short_phase_prints_nothing_and_no_end_twice():
    lines, clock = [], Clock()
    bar = P.LogLines(5, "evaluation", "batch", write=lines.append, interval=15, clock=clock)
    for _ in range(5):
        bar.update(1)
    bar.close()
    assert lines == []
    bar = P.LogLines(None, "decoding", "img", write=lines.append, interval=15, clock=clock)
    clock.t += 60
    bar.update(3000)  # no total: no percentage, no ETA
    bar.close()
    assert len(lines) == 1 and lines[0][20:] == "decoding: 3,000 img, 50 img/s, 1:00 elapsed"


def test_bytes_are_shown_in_binary_units():
    lines, clock = [], Clock()
    bar = P.LogLines(None, "downloading x.tar.gz", "B", write=lines.append, interval=1, clock=clock)
    clock.t = 2.0
    bar.update(3 * 2**20)
    assert lines[0][20:] == "downloading x.tar.gz: 3.00MB, 1.50MB/s, 0:02 elapsed"  # MB of 2**20 bytes


def test_a_bar_on_a_terminal_and_nothing_when_disabled(monkeypatch, capsys):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    with P.progress(4, "evaluation", "batch") as bar:
        assert isinstance(bar, P.Bar)
        for _ in range(4):
            bar.update(1)
    err = capsys.readouterr().err
    assert "evaluation" in err and "batch/s" in err  # tqdm's rate
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    with P.progress(4, "evaluation", "batch", enabled=False) as bar:
        assert isinstance(bar, P.Quiet)
    with P.progress(4, "evaluation", "batch") as bar:
        assert isinstance(bar, P.LogLines)


def test_slow_rates_keep_their_digits():
    lines, clock = [], Clock()
    bar = P.LogLines(10, "evaluation", "batch", write=lines.append, interval=1, clock=clock)
    clock.t = 18.0
    bar.update(4)  # 4 batches in 18 s: 0.222 batch/s, 6 left: 27 s
    assert lines[0][20:] == "evaluation: 4/10 batch (40%), 0.222 batch/s, 0:18 elapsed, ETA 0:27"


def test_a_phase_without_steps_says_so_only_when_it_takes_long():
    lines = []
    with P.phase("exporting resnet20 to onnx", after=0.05, write=lines.append):
        pass
    assert lines == []  # quick: nothing
    with P.phase("exporting resnet20 to onnx", after=0.05, write=lines.append):
        time.sleep(0.3)
    assert [DATED.match(line) is not None for line in lines] == [True, True]
    assert lines[0][20:] == "exporting resnet20 to onnx ..."
    assert lines[1][20:] == "exporting resnet20 to onnx: done in 0:00"


def test_durations():
    assert [P.duration(s) for s in (0, 42, 725, 3723)] == ["0:00", "0:42", "12:05", "1:02:03"]
