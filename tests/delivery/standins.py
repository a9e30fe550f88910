"""Local stand-ins for the base images a generated Dockerfile names.

The test machine reaches PyPI and Debian's archive but no container registry, so
``python:<X.Y>-slim-bookworm`` and ``ghcr.io/astral-sh/uv:<version>`` cannot be pulled.
They are rebuilt here from what the machine has:

- python: a Debian bookworm root file system from ``debootstrap --variant=minbase``
  (plus the libraries the standard library's extension modules link, as in the slim
  image), this machine's CPython of the same minor version copied into ``/usr/local``,
  and this machine's CA bundle;
- uv: ``FROM scratch`` with the ``uv`` and ``uvx`` binaries of the same version's
  PyPI wheel, as in the official image.

The slow parts (the root file system, the Python tree, the uv binaries) are cached
under a machine-wide folder keyed by version, so a second run on the same machine
only imports them; the engine keeps the images too. An image the engine already has
under the official name and without the stand-in label (a real pull) is used as is.

No tool does this: registries mirrors need a registry, and ``docker import`` takes one
tar, so the few steps are spelled out here. Run it alone with
``python -m tests.delivery.standins <Dockerfile>``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(
    os.environ.get(
        "COOKIECUTTER_CELERY_PRODUCTION_CACHE", "/var/cache/cookiecutter-celery-production"
    )
)
LABEL = "org.cookiecutter-celery-production.stand-in"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What python:*-slim-bookworm adds to minbase for the standard library (ssl, sqlite3,
# curses, readline, pyexpat) plus the files every image expects (services, zones).
PACKAGES = ("libssl3", "libsqlite3-0", "libncursesw6", "libreadline8", "libexpat1", "netbase")
ROOTFS = f"debian-bookworm-minbase-{hashlib.sha256(','.join(PACKAGES).encode()).hexdigest()[:8]}"
# Parts of a Python install no image needs: tests, IDLE, Tk, the static library,
# and whatever packages this machine installed into it (a virtualenv ignores them).
SKIP = re.compile(
    r"^lib/python3\.\d+/(test|idlelib|tkinter|turtledemo|site-packages/.+)(/|$)"
    r"|^lib/python3\.\d+/config-[^/]+/libpython.*\.a$"
    r"|^lib/libpython.*\.a$"
    r"|(^|/)__pycache__/.*\.opt-[12]\.pyc$"
)
CA_BUNDLE = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))


@dataclass(frozen=True)
class BaseImages:
    """The base images a Dockerfile names, and the versions behind them."""

    python: str
    python_version: str
    uv: str
    uv_version: str

    @classmethod
    def named_in(cls, dockerfile: Path) -> BaseImages:
        """Read the two base images from a generated Dockerfile."""
        text = dockerfile.read_text()
        python = re.search(r"^ARG PYTHON_VERSION=(\d+\.\d+)$", text, re.MULTILINE)
        uv = re.search(r"--from=(ghcr\.io/astral-sh/uv):(\S+)", text)
        if (
            python is None
            or uv is None
            or "FROM python:${PYTHON_VERSION}-slim-bookworm" not in text
        ):
            raise ValueError(f"{dockerfile}: base images not found where the template puts them")
        return cls(
            python=f"python:{python[1]}-slim-bookworm",
            python_version=python[1],
            uv=f"{uv[1]}:{uv[2]}",
            uv_version=uv[2],
        )


def ensure(docker: str, images: BaseImages) -> list[str]:
    """Make both base images available to the engine; one line per image saying how."""
    CACHE.mkdir(parents=True, exist_ok=True)
    return [ensure_python(docker, images), ensure_uv(docker, images)]


def stand_in_key(docker: str, image: str) -> str | None:
    """The stand-in label of an image in the engine: None when absent, "" when real."""
    template = f'{{{{index .Config.Labels "{LABEL}"}}}}'
    result = run(docker, "image", "inspect", "--format", template, image, check=False)
    if result.returncode != 0:
        return None
    return result.stdout.strip().replace("<no value>", "")


def ensure_python(docker: str, images: BaseImages) -> str:
    """The python base: the engine's own, or a stand-in with this machine's Python."""
    prefix, version = machine_python(images.python_version)
    key = f"python-{version}"
    found = stand_in_key(docker, images.python)
    if found == "":
        return f"{images.python}: the engine's own image"
    note = (
        f"{images.python}: LOCAL STAND-IN, not the official image (Debian bookworm minbase "
        f"+ this machine's Python {version} in /usr/local)"
    )
    if found == key:
        return note + ", already in the engine"
    base = ensure_rootfs_image(docker)
    tree = CACHE / f"{key}.tar"
    if not tree.exists():
        atomic_write(tree, lambda path: pack_python(prefix, path))
    with tempfile.TemporaryDirectory(prefix="standin-") as context:
        shutil.copy(tree, Path(context) / "python.tar")
        shutil.copy(CA_BUNDLE, Path(context) / "ca-certificates.crt")
        (Path(context) / "Dockerfile").write_text(
            f"FROM {base}\n"
            # ADD unpacks a local tar; ldconfig finds libpython in /usr/local/lib.
            "ADD python.tar /\n"
            "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
            "RUN ldconfig && python3 -c 'import ssl, sqlite3, ctypes, zlib, lzma, bz2'\n"
            "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \\\n"
            "    LANG=C.UTF-8 \\\n"
            f"    PYTHON_VERSION={version} \\\n"
            # uv verifies TLS with its own roots unless told; this machine's proxy
            # signs with the machine's CA.
            "    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\n"
            f'LABEL {LABEL}="{key}"\n'
            'CMD ["python3"]\n'
        )
        build(docker, context, images.python)
    return note + ", built now"


def ensure_uv(docker: str, images: BaseImages) -> str:
    """The uv image: the engine's own, or scratch + the binaries of uv's PyPI wheel."""
    key = f"uv-{images.uv_version}"
    found = stand_in_key(docker, images.uv)
    if found == "":
        return f"{images.uv}: the engine's own image"
    note = f"{images.uv}: LOCAL STAND-IN, not the official image (uv {images.uv_version} from PyPI)"
    if found == key:
        return note + ", already in the engine"
    binaries = CACHE / key
    if not (binaries / "uv").exists():
        atomic_write(binaries, lambda path: unpack_uv(images.uv_version, path))
    with tempfile.TemporaryDirectory(prefix="standin-") as context:
        for name in ("uv", "uvx"):
            shutil.copy(binaries / name, Path(context) / name)
        (Path(context) / "Dockerfile").write_text(
            f'FROM scratch\nCOPY uv uvx /\nLABEL {LABEL}="{key}"\n'
        )
        build(docker, context, images.uv)
    return note + ", built now"


def ensure_rootfs_image(docker: str) -> str:
    """The Debian root file system as an image, imported from the cached tar."""
    image = f"cookiecutter-celery-production/{ROOTFS}"
    if stand_in_key(docker, image) == ROOTFS:
        return image
    tar = CACHE / f"{ROOTFS}.tar"
    if not tar.exists():
        atomic_write(tar, debootstrap)
    run(docker, "import", "--change", f'LABEL {LABEL}="{ROOTFS}"', str(tar), image)
    return image


def debootstrap(tar: Path) -> None:
    """Bootstrap a minimal bookworm (needs root) and pack it."""
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as root:
        run(
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            "bookworm",
            root,
            MIRROR,
        )
        shutil.rmtree(Path(root) / "var/cache/apt/archives", ignore_errors=True)
        run("tar", "--numeric-owner", "-C", root, "-cf", str(tar), ".")


def machine_python(minor: str) -> tuple[Path, str]:
    """This machine's CPython of a minor version: its prefix and full version."""
    found = run("uv", "python", "find", "--system", "--no-project", minor, check=False)
    if found.returncode != 0:
        raise LookupError(f"no Python {minor} on this machine for the python stand-in")
    probe = "import sys, platform; print(sys.base_prefix); print(platform.python_version())"
    prefix, version = run(found.stdout.strip(), "-c", probe).stdout.split()
    return Path(prefix), version


def pack_python(prefix: Path, tar: Path) -> None:
    """Pack a Python install as ``usr/local``, without what an image does not need."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if SKIP.search(info.name.removeprefix("usr/local/")):
            return None  # a skipped folder is not descended into
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(tar, "w") as archive:
        archive.add(prefix, arcname="usr/local", filter=keep)  # symlinks stay symlinks


def unpack_uv(version: str, folder: Path) -> None:
    """The uv and uvx binaries of a uv release, from its wheel on PyPI."""
    with tempfile.TemporaryDirectory(prefix="uv-wheel-") as target:
        run("uv", "pip", "install", "--quiet", "--no-deps", "--target", target, f"uv=={version}")
        folder.mkdir()
        for name in ("uv", "uvx"):
            shutil.copy(Path(target, "bin", name), folder / name)


def atomic_write(path: Path, make: Callable[[Path], None]) -> None:
    """Create a cache entry under a temporary name, then rename it into place, so an
    interrupted run never leaves a half-written entry behind."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        make(partial)
        partial.rename(path)
    finally:
        if partial.is_dir():
            shutil.rmtree(partial)
        else:
            partial.unlink(missing_ok=True)


def build(docker: str, context: str, tag: str) -> None:
    """Build an image with BuildKit on the host network (the engine has no bridge)."""
    run(
        docker,
        "build",
        "--network",
        "host",
        "--tag",
        tag,
        context,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )


def run(
    *command: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise with its output."""
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=env, check=False
    )
    if check and result.returncode != 0:
        output = result.stdout + result.stderr
        raise RuntimeError(f"{' '.join(command)} failed (exit {result.returncode}):\n{output}")
    return result


def main() -> None:
    """Make the stand-ins a Dockerfile needs and say what was done."""
    docker = os.environ.get("DOCKER", "/usr/bin/docker")
    for line in ensure(docker, BaseImages.named_in(Path(sys.argv[1]))):
        print(line)


if __name__ == "__main__":
    main()
