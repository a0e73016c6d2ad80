"""Peak memory of inspecting one large image (femo.ingest.images.inspect_image), each in a
fresh process, for this checkout and, with ``--before COMMIT``, for the images module of an
earlier commit (issue 17, item 8):

    PYTHONPATH=. .venv/bin/python benchmarks/decode_memory.py [--before 723abb9] [--large]

Pictures (generated, smooth with a little noise): a 12 MP 16-bit RGBA TIFF, a 24 MP float32
gray TIFF, a 24 MP 8-bit JPEG, a 12 MP palette GIF; ``--large`` adds a 40 MP 16-bit RGBA TIFF
(320 MB decoded), measured with the byte bound raised and at the default bound. Prints the
extra peak RSS (Linux's ``VmHWM`` after minus before the call) and the call's seconds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

#: Run in a fresh interpreter: MODULE_FILE IMAGE BOUND -> "MB SECONDS RESULT".
PROBE = """
import importlib.util, re, sys, time
def peak_mb():  # VmHWM: this process's own peak (ru_maxrss would carry the parent's over exec)
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) / 1024
spec = importlib.util.spec_from_file_location("images_under_test", sys.argv[1])
images = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = images
spec.loader.exec_module(images)
import cv2, numpy as np
fields = images.Limits.__dataclass_fields__
bound = {"max_decoded_bytes": int(sys.argv[3])} if "max_decoded_bytes" in fields else {}
limits = images.Limits(max_pixels=10**9, **bound)
images.inspect_image(cv2.imencode(".png", np.zeros((16, 16), np.uint8))[1].tobytes())
data = open(sys.argv[2], "rb").read()
before = peak_mb()
start = time.perf_counter()
result = images.inspect_image(data, limits)
seconds = time.perf_counter() - start
extra = peak_mb() - before
print(f"{extra:.0f} {seconds:.2f} {getattr(result, 'reason', 'measured')}")
"""


def smooth(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """A smooth random picture of ``shape`` scaled to ``scale``, float32."""
    small = rng.random((shape[0] // 50, shape[1] // 50, *shape[2:])).astype(np.float32)
    big = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    big += rng.random(big.shape, dtype=np.float32) * 0.002
    return big * scale


def pictures(folder: Path, large: bool) -> list[Path]:
    """Write the pictures into ``folder``; their paths."""
    rng = np.random.default_rng(5)
    tiff = [cv2.IMWRITE_TIFF_COMPRESSION, 8]
    made = {
        "rgba16_12mp.tiff": lambda p: cv2.imwrite(
            str(p), smooth(rng, (3000, 4000, 4), 60000).astype(np.uint16), tiff
        ),
        "gray_f32_24mp.tiff": lambda p: cv2.imwrite(str(p), smooth(rng, (4000, 6000), 1.0)),
        "rgb8_24mp.jpg": lambda p: cv2.imwrite(
            str(p), smooth(rng, (4000, 6000, 3), 250).astype(np.uint8)
        ),
        "p_12mp.gif": lambda p: Image.fromarray(smooth(rng, (3000, 4000, 3), 250).astype(np.uint8))
        .convert("P")
        .save(p),
    }
    if large:
        made["rgba16_40mp.tiff"] = lambda p: cv2.imwrite(
            str(p), smooth(rng, (5000, 8000, 4), 60000).astype(np.uint16), tiff
        )
    paths = []
    for name, write in made.items():
        write(folder / name)
        paths.append(folder / name)
    return paths


def probe(module: Path, image: Path, bound: int) -> str:
    """``MB SECONDS RESULT`` of inspecting ``image`` with ``module`` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(module), str(image), str(bound)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a commit whose femo/ingest/images.py to compare")
    parser.add_argument("--large", action="store_true", help="add the 40 MP 16-bit TIFF")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        modules = {"now": ROOT / "femo" / "ingest" / "images.py"}
        if args.before:
            old = folder / "images_before.py"
            old.write_text(
                subprocess.run(
                    ["git", "show", f"{args.before}:femo/ingest/images.py"],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            modules = {"before": old, **modules}
        print(f"{'image':20s} {'code':7s} {'bound':>9s} {'extra MB':>9s} {'s':>6s}  result")
        for image in pictures(folder, args.large):
            bounds = [10**12] + ([200_000_000] if "40mp" in image.name else [])
            for code, module in modules.items():
                for bound in bounds if code == "now" else bounds[:1]:
                    mb, seconds, result = probe(module, image, bound).split()
                    shown = "default" if bound == 200_000_000 else "raised"
                    row = f"{image.name:20s} {code:7s} {shown:>9s} {mb:>9s} {seconds:>6s}"
                    print(f"{row}  {result}")


if __name__ == "__main__":
    main()
