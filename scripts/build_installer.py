"""Build the Scuba Steve desktop app with PyInstaller, then run the frozen `--self-test`.

Usage (from anywhere; scripts/build_installer.sh and .ps1 call this):

    python scripts/build_installer.py [--dist DIR] [--work DIR] [--summary FILE]

Prints the build time, the bundle size with what takes the space, and the self-test report.
Exit status: 0 built and self-test passed, 1 self-test failed, 2 build failed.
The work folder (several GB: PyInstaller's analysis and its cache of stripped libraries) is
deleted afterwards unless --keep-work; the bundle stays in --dist.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "build_installer.spec"
APP_NAME = "ScubaSteve"
#: A CUDA build of torch on Linux needs about this much free space for the bundle plus work files.
MIN_FREE_BYTES = 20 * 1024**3


@dataclass
class BundleSize:
    """Bytes on disk of a bundle folder (symlinks counted as links, not followed)."""

    total: int
    files: int
    groups: list[tuple[str, int]] = field(default_factory=list)
    largest: list[tuple[str, int]] = field(default_factory=list)


def measure_bundle(folder: Path, top: int = 12) -> BundleSize:
    """Size of `folder`, by top-level package (below the `_internal`/`Frameworks` folder) and file."""
    groups: Counter[str] = Counter()
    files: list[tuple[str, int]] = []
    for dirpath, _dirnames, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath) / name
            size = path.lstat().st_size
            rel = path.relative_to(folder).parts
            inner = list(rel)
            for marker in ("_internal", "Frameworks", "Resources"):
                if marker in inner:
                    inner = inner[inner.index(marker) + 1 :]
                    break
            key = "/".join(inner[:2]) if inner and inner[0] in ("nvidia", "torch") else inner[0]
            groups[key] += size
            files.append(("/".join(rel), size))
    files.sort(key=lambda item: -item[1])
    return BundleSize(
        total=sum(groups.values()),
        files=len(files),
        groups=groups.most_common(top),
        largest=files[:top],
    )


def find_bundle(dist: Path) -> tuple[Path, Path]:
    """(bundle to ship, its executable) in a PyInstaller dist folder; FileNotFoundError if absent."""
    if sys.platform == "darwin":
        bundle = dist / f"{APP_NAME}.app"
        exe = bundle / "Contents" / "MacOS" / APP_NAME
    else:
        bundle = dist / APP_NAME
        exe = bundle / (f"{APP_NAME}.exe" if os.name == "nt" else APP_NAME)
    if not exe.is_file():
        raise FileNotFoundError(f"no executable at {exe}: did the build finish?")
    return bundle, exe


def human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(nbytes) < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit in ("B", "KiB") else f"{nbytes:.2f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.2f} GiB"


def build(dist: Path, work: Path, log_level: str) -> float:
    """Run PyInstaller on the spec; returns the seconds it took. Raises CalledProcessError."""
    env = dict(os.environ)
    # Keep PyInstaller's cache (stripped copies of every library, GBs) inside the work folder.
    env.setdefault("PYINSTALLER_CONFIG_DIR", str(work / "pyinstaller-cache"))
    command = [
        sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm", "--clean",
        "--distpath", str(dist), "--workpath", str(work), "--log-level", log_level,
    ]  # fmt: skip
    print("+", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


def run_self_test(exe: Path, report: Path, timeout: float) -> tuple[int, float, str]:
    """Run `exe --self-test`; (exit status, seconds, report text)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SCUBASTEVE_SELF_TEST_REPORT=str(report))
    start = time.perf_counter()
    try:
        result = subprocess.run(
            [str(exe), "--self-test"], env=env, capture_output=True, text=True, timeout=timeout
        )
        status, stderr = result.returncode, result.stderr
    except subprocess.TimeoutExpired as exc:
        status, stderr = 124, f"self-test killed after {timeout:.0f} s\n{exc.stderr or ''}"
    seconds = time.perf_counter() - start
    text = report.read_text(encoding="utf-8") if report.is_file() else ""
    if status != 0 and stderr:
        text += "\n--- stderr (last 40 lines) ---\n" + "\n".join(stderr.splitlines()[-40:]) + "\n"
    return status, seconds, text


def print_size(size: BundleSize) -> None:
    print(f"bundle: {human(size.total)} in {size.files} files")
    print("  largest parts:")
    for name, nbytes in size.groups:
        print(f"    {human(nbytes):>10}  {name}")
    print("  largest files:")
    for name, nbytes in size.largest:
        print(f"    {human(nbytes):>10}  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the bundle goes")
    parser.add_argument("--work", type=Path, default=ROOT / "build", help="PyInstaller work folder")
    parser.add_argument("--keep-work", action="store_true", help="keep the work folder")
    parser.add_argument("--skip-self-test", action="store_true", help="build only")
    parser.add_argument("--self-test-timeout", type=float, default=900.0, help="seconds")
    parser.add_argument("--summary", type=Path, help="also write the numbers as JSON here")
    parser.add_argument("--log-level", default="WARN", help="PyInstaller log level (INFO, WARN...)")
    args = parser.parse_args(argv)
    dist, work = args.dist.resolve(), args.work.resolve()
    dist.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dist).free
    if free < MIN_FREE_BYTES:
        print(f"warning: only {human(free)} free at {dist}; a CUDA build needs about "
              f"{human(MIN_FREE_BYTES)}", flush=True)  # fmt: skip
    summary: dict[str, object] = {
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
    }
    try:
        summary["build_seconds"] = round(build(dist, work, args.log_level), 1)
        bundle, exe = find_bundle(dist)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"build FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        summary["work_bytes"] = measure_bundle(work).total if work.is_dir() else 0
        print(f"work folder: {human(summary['work_bytes'])} at {work}", flush=True)
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    size = measure_bundle(bundle)
    summary.update(bundle=str(bundle), executable=str(exe), bundle_size=asdict(size))
    print(f"build: {summary['build_seconds']} s -> {bundle}")
    print_size(size)
    status = 0
    if not args.skip_self_test:
        report = dist / "self-test.txt"
        status, seconds, text = run_self_test(exe, report, args.self_test_timeout)
        print(f"frozen self-test: exit status {status} in {seconds:.1f} s")
        print(text, end="" if text.endswith("\n") else "\n")
        summary["self_test"] = {"status": status, "seconds": round(seconds, 1), "report": text}
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
