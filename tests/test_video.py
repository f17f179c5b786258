"""Video: sampling as qwen-vl-utils does, the three encodings per provider, the 400/422
fallback, bad input refused before sending, and the record/replay key. Clips are made
with PyAV here; a local server records what the client sends."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
from fake_server import Reply
from support import run_cell
from videoclips import frame_index_of, make_audio_only, make_clip

import qwen_nb
from qwen_nb import Video, VideoError
from qwen_nb.media.video import prepare_video
from qwen_nb.media.video_plan import frame_count, frame_indices, frame_size

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """10 s at 10 fps, one keyframe (a long GOP, as in real files)."""
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", seconds=10, fps=10)


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory):
    """30 s at 10 fps with a keyframe every second."""
    return make_clip(tmp_path_factory.mktemp("clips") / "gop.mp4", seconds=30, fps=10, gop=10)


def sent_content(server):
    return server.requests[-1].json["messages"][-1]["content"]


def timestamps_sent(content):
    return [float(part["text"].strip("<>").split()[0]) for part in content
            if part["type"] == "text" and part["text"].startswith("<")]


# --- sampling arithmetic (qwen-vl-utils smart_nframes / linspace / smart_resize) ---------


@pytest.mark.parametrize(("duration", "fps", "cap", "total", "expected"), [
    (10.0, 2.0, 128, 100, 20),     # 2 per second
    (10.5, 2.0, 128, 105, 20),     # rounded down to an even number
    (1.0, 2.0, 128, 10, 4),        # at least 4
    (0.2, 2.0, 128, 3, 2),         # but never more than there are (even: 2)
    (600.0, 2.0, 64, 15000, 64),   # a long clip is capped: sampled more sparsely
    (600.0, 2.0, 63, 15000, 62),   # an odd cap rounds down
    (10.0, 0.5, 128, 100, 4),
])
def test_frame_count(duration, fps, cap, total, expected):
    assert frame_count(duration, fps, cap, total) == expected


def test_frame_indices_spread_like_linspace():
    assert frame_indices(0, 99, 20) == [round(i * 99 / 19) for i in range(20)]
    assert frame_indices(5, 5, 1) == [5]


def test_frame_size_shares_a_total_budget():
    few = frame_size(1920, 1080, 8)
    many = frame_size(1920, 1080, 128)
    assert all(side % 32 == 0 for side in few + many)
    assert few[0] * few[1] <= 768 * 32 * 32
    assert many[0] * many[1] < few[0] * few[1]  # more frames, fewer pixels each
    assert frame_size(1920, 1080, 8, max_pixels=200 * 32 * 32)[0] * \
        frame_size(1920, 1080, 8, max_pixels=200 * 32 * 32)[1] <= 200 * 32 * 32


# --- decoding -----------------------------------------------------------------------------


def test_known_clip_gives_frames_at_the_reference_times(clip):
    video = prepare_video(str(clip), label="clip")
    expected = [i / 10 for i in frame_indices(0, 99, 20)]
    assert len(video.frames) == 20
    assert video.timestamps == pytest.approx(expected, abs=1e-6)
    # The frame returned really is the frame at that time (its grey level says which).
    assert [frame_index_of(f.url) for f in video.frames] == [round(t * 10) % 25
                                                           for t in video.timestamps]
    assert len({frame.sent_size for frame in video.frames}) == 1


def test_seeking_returns_the_frames_it_claims(gop_clip):
    video = prepare_video(Video(str(gop_clip), fps=0.5), label="gop")
    assert len(video.frames) == 14
    assert [frame_index_of(f.url) for f in video.frames] == [round(t * 10) % 25
                                                           for t in video.timestamps]
    # Each frame is within half a sampling interval of its reference time.
    reference = [i / 10 for i in frame_indices(0, 299, 14)]
    spacing = (reference[-1] - reference[0]) / 13
    assert all(abs(a - b) <= spacing / 2 for a, b in zip(video.timestamps, reference,
                                                         strict=True))
    assert list(video.timestamps) == sorted(set(video.timestamps))


def test_start_end_and_caps(clip):
    video = prepare_video(Video(str(clip), start=2, end=6, max_frames=6), label="part")
    assert len(video.frames) == 6
    assert video.timestamps[0] == pytest.approx(2.0) and video.timestamps[-1] == \
        pytest.approx(6.0)
    small = prepare_video(Video(str(clip), max_pixels=64 * 32 * 32), label="small")
    width, height = small.frame_size
    assert width * height <= 64 * 32 * 32


@pytest.mark.parametrize(("codec", "ext"), [("libx264", "mov"), ("libx264", "mkv"),
                                            ("mpeg4", "avi"), ("libvpx-vp9", "webm"),
                                            ("gif", "gif")])
def test_containers(tmp_path, codec, ext):
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} not in this PyAV build")
    path = make_clip(tmp_path / f"c.{ext}", seconds=3, fps=10, codec=codec)
    video = prepare_video(Video(str(path)), label=ext)
    assert len(video.frames) == 6
    assert [frame_index_of(f.url) for f in video.frames] == [round(t * 10) % 25
                                                           for t in video.timestamps]


def test_bytes_array_and_frame_list(clip):
    from PIL import Image

    from_bytes = prepare_video(clip.read_bytes(), label="data")
    assert len(from_bytes.frames) == 20
    array = np.stack([np.full((64, 96, 3), 20 + 9 * i, np.uint8) for i in range(6)])
    from_array = prepare_video(array, label="arr")
    assert from_array.timestamps == (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
    assert [frame_index_of(f.url) for f in from_array.frames] == list(range(6))
    frames = [Image.fromarray(a) for a in array[:3]]
    from_list = prepare_video(Video(frames, fps=1), label="frames")
    assert from_list.timestamps == (0.0, 1.0, 2.0, 2.0)  # odd: the last one repeated
    assert any("repeated" in note for note in from_list.notes)


# --- the three encodings, per provider preset -------------------------------------------


def test_aimlapi_gets_timestamped_images(server, clip):
    qwen_nb.ask("What happens?", video=str(clip), provider="aimlapi")
    content = sent_content(server)
    assert [p["type"] for p in content[:4]] == ["text", "image_url", "text", "image_url"]
    assert timestamps_sent(content) == pytest.approx(
        [round(i / 10, 1) for i in frame_indices(0, 99, 20)])
    assert content[-1] == {"type": "text", "text": "What happens?"}
    assert "mm_processor_kwargs" not in server.requests[-1].json


def test_dashscope_gets_a_frame_list(server, clip):
    qwen_nb.ask("What happens?", video=Video(str(clip), fps=1), provider="dashscope")
    content = sent_content(server)
    assert content[0]["type"] == "video"
    frames = content[0]["video"]
    assert len(frames) == 10 and all(f.startswith("data:image/jpeg;base64,") for f in frames)
    assert [frame_index_of(f) for f in frames] == [round(i / 10 * 10) % 25 for i in
                                                   frame_indices(0, 99, 10)]
    # Too few frames for DashScope's minimum of 4: the last one is repeated.
    short = np.stack([np.full((64, 64, 3), 100, np.uint8)] * 2)
    qwen_nb.ask("And now?", video=short, provider="dashscope")
    assert len(sent_content(server)[0]["video"]) == 4


def test_vllm_gets_a_small_mp4_of_the_sampled_frames(server, clip):
    response = qwen_nb.ask("What happens?", video=str(clip), provider="vllm")
    body = server.requests[-1].json
    part = body["messages"][-1]["content"][0]
    assert part["type"] == "video_url"
    url = part["video_url"]["url"]
    assert url.startswith("data:video/mp4;base64,")
    mp4 = base64.b64decode(url.split(",", 1)[1])
    assert len(mp4) < clip.stat().st_size  # re-encoded from 20 small frames, not the file
    with av.open(io.BytesIO(mp4)) as container:
        decoded = list(container.decode(video=0))
        assert len(decoded) == 20
        assert (decoded[0].width, decoded[0].height) == response.videos[0].frame_size
    assert body["mm_processor_kwargs"] == {"fps": pytest.approx(2.0), "do_sample_frames": True}


def test_video_as_overrides_the_preset(server, clip):
    qwen_nb.ask("What happens?", video=str(clip), provider="vllm", video_as="images")
    assert sent_content(server)[1]["type"] == "image_url"


@pytest.mark.parametrize("status", [400, 422])
def test_refused_video_part_is_sent_again_as_images(server, clip, status):
    server.queue(Reply(status=status, error_body={"error": {"message": "video_url is not "
                                                            "supported"}}), Reply())
    response = qwen_nb.ask("What happens?", video=str(clip), provider="vllm")
    assert len(server.requests) == 2
    first, second = (r.json for r in server.requests)
    assert first["messages"][-1]["content"][0]["type"] == "video_url"
    assert [p["type"] for p in second["messages"][-1]["content"][:2]] == ["text", "image_url"]
    assert "mm_processor_kwargs" not in second
    assert any("sent again as timestamped images" in n for n in response.notes)
    assert response.videos[0].encoding == "images"
    assert response.attempts == 1


def test_a_refused_fallback_is_not_retried_again(server, clip):
    server.queue(Reply(status=400), Reply(status=400))
    with pytest.raises(qwen_nb.APIError):
        qwen_nb.ask("What happens?", video=str(clip), provider="dashscope")
    assert len(server.requests) == 2


# --- bad input: its own message, nothing sent ------------------------------------------


def _bad_inputs(tmp_path, clip):
    notvideo = tmp_path / "notes.mp4"
    notvideo.write_text("just text")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    audio = make_audio_only(tmp_path / "sound.m4a")
    return [
        (str(tmp_path / "missing.mp4"), "not found"),
        (str(notvideo), "could not be opened as a video"),
        (str(empty), "could not be opened as a video"),
        (str(audio), "no video stream (it holds only audio)"),
        (np.zeros((4, 32, 32), np.uint8), "T x H x W x 3"),
        (np.zeros((4, 32, 32, 3), np.int32), "dtype int32"),
        (np.full((4, 32, 32, 3), 2.0), "outside [0, 1]"),
        ([np.zeros((32, 32, 3), np.uint8)] * 200, "more than the cap of 128"),
        ([object()], "each frame must be"),
        (Video(str(clip), start=20), "holds no frame"),
    ]


def test_each_bad_input_is_refused_before_sending(server, tmp_path, clip):
    for value, words in _bad_inputs(tmp_path, clip):
        with pytest.raises(VideoError, match=None) as caught:
            qwen_nb.ask("What happens?", video=value)
        assert words in caught.value.message, (value, caught.value.message)
    with pytest.raises(VideoError, match="start must be before end"):
        Video(str(clip), start=5, end=5)
    with pytest.raises(VideoError, match="over the 100 cap"):
        qwen_nb.ask("x", video=str(clip), max_video_tokens=100)
    assert server.requests == []


@pytest.mark.parametrize(("ext", "words"), [("avi", "is a zero-length clip"),
                                            ("mp4", "no streams at all")])
def test_zero_length_clip(server, tmp_path, ext, words):
    path = tmp_path / f"zero.{ext}"
    with av.open(str(path), mode="w") as output:
        stream = output.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 64, 64
        output.start_encoding()
    with pytest.raises(VideoError, match=words):
        qwen_nb.ask("x", video=str(path))
    assert server.requests == []


def test_missing_pyav_names_the_extra(monkeypatch, clip):
    import builtins

    real_import = builtins.__import__

    def no_av(name, *args, **kwargs):
        if name == "av":
            raise ImportError("No module named 'av'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_av)
    with pytest.raises(VideoError, match=r"qwen-nb\[video\]"):
        prepare_video(str(clip), label="clip")


# --- entry points, Details, cache, simulator --------------------------------------------


def test_magic_video_option_and_interpolation(ip, clip):
    ip.user_ns["clip"] = Video(str(clip), fps=1)
    ip.user_ns["path"] = str(clip)
    result = run_cell(ip, "%%qwen -v path --video-as images\nCompare with {clip} please.")
    assert result.error_in_exec is None, result.error_in_exec
    response = ip.user_ns["_qwen"]
    assert len(response.videos) == 2
    assert [v.encoding for v in response.videos] == ["images", "images"]
    assert len(response.videos[0].frames) == 20 and len(response.videos[1].frames) == 10


def test_magic_bad_video_fails_the_cell_and_sends_nothing(ip, server):
    run_cell(ip, "import numpy as np\nbad = np.zeros((3, 8, 8), np.uint8)")
    result = run_cell(ip, "%%qwen -v bad\nWhat happens?")
    assert isinstance(result.error_in_exec, VideoError)
    assert server.requests == []


def test_details_show_frames_tokens_and_timeline(server, clip):
    server.queue(Reply(answer='Events:\n```json\n[{"start": "00:02", "end": "00:04", '
                              '"event": "<b>dog</b> runs"}, {"time": 7.5, "bbox_2d": '
                              '[100, 200, 500, 600], "label": "ball"}]\n```'))
    response = qwen_nb.ask("When?", video=str(clip))
    assert [(e.start, e.end, e.label) for e in response.events] == [
        (2.0, 4.0, "<b>dog</b> runs"), (7.5, None, "ball")]
    html = response._repr_mimebundle_()[0]["text/html"]
    assert "Video 1 frames sent" in html and html.count("<figure>") >= 20 + 2
    assert "~" + f"{response.videos[0].visual_tokens:,}" + " visual tokens" in html
    assert "Timeline" in html and "&lt;b&gt;dog&lt;/b&gt; runs" in html
    assert "<b>dog" not in html
    assert 'class="qwen-nb-box" style="left:10.0%;top:20.0%;width:40.0%;height:40.0%"' in html


def test_cache_key_follows_the_frames_sent(clip, tmp_path):
    from qwen_nb._fingerprint import request_fingerprint
    from qwen_nb.api import build_request

    def key(value, encoding="images"):
        video = prepare_video(value, label="v", encoding=encoding)
        return request_fingerprint(build_request([video, "What?"], model="m"))

    assert key(str(clip)) == key(clip.read_bytes())  # same frames, whatever the source
    assert key(str(clip)) != key(Video(str(clip), fps=1))
    assert key(str(clip)) != key(str(clip), "frames")


def test_replay_of_a_video_request(server, clip, tmp_path):
    first = qwen_nb.ask("What?", video=str(clip), cache="auto", cache_dir=tmp_path)
    again = qwen_nb.ask("What?", video=str(clip), cache="replay", cache_dir=tmp_path)
    assert again.answer == first.answer and again.replayed_from
    assert len(server.requests) == 1
    assert len(again.videos[0].frames) == 20
    import json

    (entry,) = [json.loads(f.read_text()) for f in tmp_path.glob("*.json")]
    assert entry["request"]["videos"] == [{"digest": first.videos[0].digest, "frames": 20,
                                           "encoding": "images", "frame_size": "480x288"}]
    assert "base64" not in json.dumps(entry)


def test_offline_simulator_describes_the_frames(clip, monkeypatch):
    monkeypatch.setenv("QWEN_NB_PROVIDER", "offline")
    response = qwen_nb.ask("What happens?", video=Video(str(clip), fps=1))
    assert "10 frames" in response.answer
    assert "Frame 1 at 0.0 s" in response.thinking
    assert response.events and all(e.label.startswith("frames look") for e in response.events)
    assert math.isclose(response.events[-1].end or response.events[-1].start,
                        response.videos[0].timestamps[-1], abs_tol=0.06)


def test_import_stays_light():
    import subprocess
    import sys

    code = ("import sys, qwen_nb; qwen_nb.Video('x.mp4'); "
            "print('av' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_batch_one_request_per_video(server, clip):
    short = np.stack([np.full((64, 64, 3), 60 + 40 * i, np.uint8) for i in range(4)])
    result = qwen_nb.batch("What happens?", videos=[str(clip), short], progress=False)
    assert [item.status for item in result] == ["ok", "ok"]
    counts = sorted(len(timestamps_sent(r.json["messages"][-1]["content"]))
                    for r in server.requests)
    assert counts == [4, 20]
    with pytest.raises(qwen_nb.InputError, match="2 requests but 1 videos"):
        qwen_nb.batch(["a", "b"], videos=[str(clip)], progress=False)


def test_panel_upload_accepts_a_video(server, clip):
    from test_panel import click_send, type_prompt, upload, upload_item

    from qwen_nb.frontend.widget import esm
    from qwen_nb.panel import Panel

    panel = Panel(namespace={}, provider="dashscope")
    try:
        upload(panel, upload_item("clip.mp4", clip.read_bytes(), "video/mp4"))
        assert 'upload.accept = "image/*,video/*' in esm()  # the page's file picker
        assert len(panel.images) == 1 and panel.images[0].encoding == "frames"
        type_prompt(panel, "What happens?")
        click_send(panel)
        assert panel.wait(30)
        content = sent_content(server)
        assert content[0]["type"] == "video" and len(content[0]["video"]) == 20
    finally:
        panel.close()


def test_chat_history_resends_a_video_only_when_asked(ip, clip):
    ip.user_ns["clip"] = str(clip)
    assert run_cell(ip, "%%qwen --chat vid -v clip\nWhat happens?").error_in_exec is None
    assert run_cell(ip, "%%qwen --chat vid\nAnd then?").error_in_exec is None
    from qwen_nb import conversation

    history = conversation.get("vid").messages(resend_images=False)
    assert history[0].videos == () and "1 video not resent" in history[0].text
    assert conversation.get("vid").messages()[0].videos
    conversation.reset("vid")


def test_replay_of_a_fallback_keeps_the_images_encoding(server, clip, tmp_path):
    server.queue(Reply(status=400), Reply(answer='[{"time": 1.0, "event": "e"}]'))
    video = Video(str(clip), start=4)
    first = qwen_nb.ask("When?", video=video, provider="vllm", cache="auto", cache_dir=tmp_path)
    again = qwen_nb.ask("When?", video=video, provider="vllm", cache="replay",
                        cache_dir=tmp_path)
    assert first.videos[0].encoding == again.videos[0].encoding == "images"
    # Images carry source times, so "1.0" stays 1.0 s (an MP4 would have meant 5.0 s).
    assert [e.start for e in again.events] == [e.start for e in first.events] == [1.0]
