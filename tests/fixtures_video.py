"""Tiny fixture datasets written at test time, laid out exactly like the real ones.

Videos are real containers and codecs written with PyAV: AVI/MPEG-4 ('mpeg4') like UCF101
and HMDB51, WebM/VP9 ('libvpx-vp9') like Something-Something v2, MP4/H.264 ('libx264')
and MKV for video folders, JPEG frame folders (PIL) and .mat annotations (scipy) like
Penn Action. Bad files among them: corrupt (random bytes), truncated (cut in half) and
empty (0 bytes) videos, and split lists naming videos that are not on disk.

Each ``make_*`` returns what a correct builder must produce from the fixture.
"""
from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

H, W = 32, 40  # frame size of the fixture videos (short side 32)


def make_frames(n: int, seed: int, h: int = H, w: int = W) -> np.ndarray:
  """uint8 (n,h,w,3): a colour gradient with a bright square moving left to right."""
  rng = np.random.default_rng(seed)
  base = np.zeros((h, w, 3), np.float32)
  base[..., 0] = np.linspace(0, 200, w)[None, :]
  base[..., 1] = np.linspace(0, 200, h)[:, None]
  base[..., 2] = rng.uniform(40, 200)
  out = np.repeat(base[None], n, axis=0)
  for t in range(n):
    x = (t * 3) % max(1, w - 8)
    out[t, h // 3:h // 3 + 8, x:x + 8] = 255
  return out.astype(np.uint8)


def write_video(path: Path, n_frames: int = 8, codec: str = "mpeg4", fps: int = 25,
                seed: int = 0, h: int = H, w: int = W) -> Path:
  """Encodes a fixture video with PyAV; the container follows the file extension."""
  path.parent.mkdir(parents=True, exist_ok=True)
  options = {"deadline": "realtime", "cpu-used": "8"} if codec.startswith("libvpx") else {}
  if codec == "libx264":
    options = {"preset": "ultrafast"}
  with av.open(str(path), mode="w") as container:
    stream = container.add_stream(codec, rate=fps, options=options)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    for frame in make_frames(n_frames, seed, h, w):
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return path


def write_corrupt(path: Path, seed: int = 0, nbytes: int = 3000) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(np.random.default_rng(seed).integers(0, 256, nbytes, np.uint8).tobytes())
  return path


def write_truncated(path: Path, **video_kwargs) -> Path:
  """A valid video cut in half."""
  write_video(path, **video_kwargs)
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  return path


def write_empty(path: Path) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(b"")
  return path


# ---- UCF101 -----------------------------------------------------------------------------

UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]


def make_ucf101(root: Path) -> dict:
  """root/UCF-101/<Class>/v_<Class>_gXX_cYY.avi + root/ucfTrainTestlist/ (split 1 only).

  Split 1: group 01 is test, groups 08-09 train. The HandstandPushups lists say
  'v_HandStandPushups_...' while the files say 'v_HandstandPushups_...' (case differs).
  """
  vids = root / "UCF-101"
  lists = root / "ucfTrainTestlist"
  lists.mkdir(parents=True)
  (lists / "classInd.txt").write_text(
      "".join(f"{i + 1} {c}\r\n" for i, c in enumerate(UCF_CLASSES)))
  train, test = [], []
  for ci, c in enumerate(UCF_CLASSES):
    listed = "HandStandPushups" if c == "HandstandPushups" else c
    for g in (1, 8, 9):
      rel = f"{c}/v_{listed}_g{g:02d}_c01.avi"
      (test if g == 1 else train).append((rel, ci + 1))
      path = vids / c / f"v_{c}_g{g:02d}_c01.avi"
      n = 6 + 2 * ci + g % 3
      if (c, g) == ("ApplyEyeMakeup", 9):
        write_corrupt(path, seed=1)
      elif (c, g) == ("HandstandPushups", 9):
        write_truncated(path, n_frames=12, seed=2)
      elif (c, g) == ("YoYo", 1):
        write_empty(path)
      elif (c, g) == ("YoYo", 9):
        pass  # listed, not on disk
      else:
        write_video(path, n_frames=n, codec="mpeg4", fps=25, seed=10 * ci + g)
  (lists / "trainlist01.txt").write_text("".join(f"{r} {l}\r\n" for r, l in train))
  (lists / "testlist01.txt").write_text("".join(f"{r}\r\n" for r, _ in test))
  return {
      "classes": UCF_CLASSES,
      "train": {"v_ApplyEyeMakeup_g08_c01": 0, "v_HandStandPushups_g08_c01": 1,
                "v_YoYo_g08_c01": 2},
      "test": {"v_ApplyEyeMakeup_g01_c01": 0, "v_HandStandPushups_g01_c01": 1},
      "skipped": {"v_ApplyEyeMakeup_g09_c01.avi": "unreadable",
                  "v_HandstandPushups_g09_c01.avi": "",  # on-disk name
                  "v_YoYo_g01_c01.avi": "empty file",
                  "v_YoYo_g09_c01.avi": "not on disk"},
  }


# ---- HMDB51 -----------------------------------------------------------------------------

HMDB_CLASSES = ["brush_hair", "cartwheel", "wave"]


def make_hmdb51(root: Path) -> dict:
  """root/<class>/<video>.avi + root/testTrainMulti_7030_splits/<class>_test_split1.txt."""
  splits = root / "testTrainMulti_7030_splits"
  splits.mkdir(parents=True)
  expected = {"train": {}, "test": {}}
  skipped = {}
  for ci, c in enumerate(HMDB_CLASSES):
    lines = []
    for k, flag in enumerate((1, 1, 2, 0)):
      name = f"Clip_{k}_{c}_f_cm_np1_le_med_{k}.avi"
      lines.append(f"{name} {flag} ")
      write_video(root / c / name, n_frames=6 + k, codec="mpeg4", fps=30, seed=ci * 10 + k)
      if flag:
        expected["train" if flag == 1 else "test"][f"{c}/{name[:-4]}"] = ci
    bad = {"brush_hair": ("Bad_corrupt_brush_hair.avi", 1),
           "cartwheel": ("Bad_empty_cartwheel.avi", 2),
           "wave": ("Missing_wave_clip.avi", 1)}[c]
    lines.append(f"{bad[0]} {bad[1]} ")
    skipped[bad[0]] = ""
    if c == "brush_hair":
      write_corrupt(root / c / bad[0], seed=5)
    elif c == "cartwheel":
      write_empty(root / c / bad[0])
    (splits / f"{c}_test_split1.txt").write_text("\n".join(lines) + "\n")
  return {"classes": HMDB_CLASSES, **expected, "skipped": skipped}


# ---- Something-Something v2 -------------------------------------------------------------

SSV2_TEMPLATES = [
    "Pushing something from left to right",
    "Pushing something from right to left",
    "Turning the camera left while filming something",
    "Turning the camera right while filming something",
    "Holding something next to something",
    "Pulling something from left to right",  # partner absent here -> maps to itself
]
SSV2_FLIP = [1, 0, 3, 2, 4, 5]


def _bracket(template: str) -> str:
  return template.replace("something", "[something]")


def make_ssv2(root: Path) -> dict:
  """root/20bn-something-something-v2/<id>.webm (VP9) + root/labels/*.json."""
  labels = root / "labels"
  vids = root / "20bn-something-something-v2"
  labels.mkdir(parents=True)
  (labels / "something-something-v2-labels.json").write_text(
      json.dumps({t: str(i) for i, t in enumerate(SSV2_TEMPLATES)}, indent=1))

  def entry(vid: int, cls: int) -> dict:
    t = SSV2_TEMPLATES[cls]
    return {"id": str(vid), "label": t.replace("something", "a pen").lower(),
            "template": _bracket(t), "placeholders": ["a pen"] * t.count("something")}

  train = [entry(101, 0), entry(102, 1), entry(103, 2), entry(104, 4), entry(105, 5),
           entry(106, 3),  # corrupt
           entry(107, 0)]  # not on disk
  train.append({"id": "108", "label": "x", "template": "Juggling [something]",
                "placeholders": ["x"]})  # unknown template
  validation = [entry(201, 3), entry(202, 1), entry(203, 4)]  # 203: truncated
  for e in train[:5] + validation[:2]:
    write_video(vids / f"{e['id']}.webm", n_frames=8, codec="libvpx-vp9", fps=12,
                seed=int(e["id"]))
  write_corrupt(vids / "106.webm", seed=3)
  write_truncated(vids / "203.webm", n_frames=12, codec="libvpx-vp9", fps=12, seed=7)
  write_video(vids / "301.webm", n_frames=6, codec="libvpx-vp9", fps=12, seed=9)  # test
  (labels / "something-something-v2-train.json").write_text(json.dumps(train))
  (labels / "something-something-v2-validation.json").write_text(json.dumps(validation))
  (labels / "something-something-v2-test.json").write_text(json.dumps([{"id": "301"}]))
  return {"classes": SSV2_TEMPLATES, "flip": SSV2_FLIP,
          "train": {"101": 0, "102": 1, "103": 2, "104": 4, "105": 5},
          "validation": {"201": 3, "202": 1},
          "skipped": {"106.webm": "", "107.webm": "not on disk", "108.webm": "template",
                      "203.webm": ""}}


# ---- Penn Action ------------------------------------------------------------------------

PENN_CLASSES = ["baseball_pitch", "jump_rope", "tennis_serve"]


def make_penn_action(root: Path, h: int = 36, w: int = 48) -> dict:
  """root/frames/<id>/%06d.jpg + root/labels/<id>.mat (action, train 1/-1 or 1/0)."""
  import scipy.io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  # id -> (action, train flag, number of frames)
  seqs = {"0001": ("baseball_pitch", 1, 6), "0002": ("baseball_pitch", -1, 7),
          "0003": ("jump_rope", 1, 5), "0004": ("jump_rope", 0, 6),
          "0005": ("tennis_serve", 1, 8), "0006": ("tennis_serve", -1, 6),  # corrupt frame
          "0007": ("tennis_serve", 1, 0)}  # .mat only, no frame folder
  (root / "labels").mkdir(parents=True)
  for i, (vid, (action, train, n)) in enumerate(seqs.items()):
    scipy.io.savemat(str(root / "labels" / f"{vid}.mat"), {
        "action": action, "pose": "front", "train": np.array([[train]], np.int16),
        "nframes": np.array([[n]]), "dimensions": np.array([[h, w, n]]),
        "x": np.zeros((n, 13)), "y": np.zeros((n, 13)), "visibility": np.ones((n, 13)),
        "bbox": np.zeros((n, 4))})
    if n == 0:
      continue
    folder = root / "frames" / vid
    folder.mkdir(parents=True)
    for t, frame in enumerate(make_frames(n, i, h, w)):
      Image.fromarray(frame).save(folder / f"{t + 1:06d}.jpg", quality=90)
    if vid == "0006":
      write_corrupt(folder / "000003.jpg", seed=4, nbytes=500)
  orphan = root / "frames" / "0008"  # frames without annotation
  orphan.mkdir()
  Image.fromarray(make_frames(1, 8, h, w)[0]).save(orphan / "000001.jpg")
  return {"classes": PENN_CLASSES, "size": (h, w),
          "train": {"0001": (0, 6), "0003": (1, 5), "0005": (2, 8)},
          "test": {"0002": (0, 7), "0004": (1, 6)},
          "skipped": {"0006": "unreadable frame", "0007": "frame folder missing",
                      "0008": "no annotation"}}


# ---- video folders ----------------------------------------------------------------------


def make_video_folder_flat(root: Path) -> dict:
  """root/<class>/<video>: MP4/H.264 (+ one .mkv in a sub-folder) and bad files."""
  classes = ["cat", "dog"]
  good = []
  for ci, c in enumerate(classes):
    for k in range(5):
      rel = f"{c}/clip{k}.mp4"
      write_video(root / rel, n_frames=6, codec="libx264", fps=30, seed=ci * 10 + k)
      good.append(rel)
  write_video(root / "dog/extra/take1.mkv", n_frames=6, codec="libx264", fps=24, seed=99)
  good.append("dog/extra/take1.mkv")
  write_empty(root / "cat/empty.mp4")
  write_truncated(root / "dog/truncated.mp4", n_frames=10, codec="libx264", fps=30, seed=98)
  (root / "cat/notes.txt").write_text("not a video")
  (root / "cat/.DS_Store").write_bytes(b"\0\0")
  return {"classes": classes, "good": good,
          "skipped": {"cat/empty.mp4": "empty", "dog/truncated.mp4": "",
                      "cat/notes.txt": "extension"}}


def make_video_folder_splits(root: Path) -> dict:
  """root/{train,val}/<class>/<video> (MP4/H.264 and AVI)."""
  expected = {"train": [], "validation": []}
  for split, folder in (("train", "train"), ("validation", "val")):
    for ci, c in enumerate(["jump", "run", "walk"]):
      n = 2 if split == "train" else 1
      for k in range(n):
        ext, codec = (".mp4", "libx264") if k == 0 else (".avi", "mpeg4")
        write_video(root / folder / c / f"v{k}{ext}", n_frames=6, codec=codec, fps=25,
                    seed=ci * 7 + k)
        expected[split].append(f"{c}/v{k}{ext}")
  write_corrupt(root / "val" / "walk" / "broken.mp4", seed=11)
  return {"classes": ["jump", "run", "walk"], **expected,
          "skipped": {"walk/broken.mp4": ""}}


def tree_size(root: Path) -> int:
  return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())

