#!/usr/bin/env bash
# Fashion-MNIST (notebooks 03-06 and 08 on Fashion-MNIST, 09, 10, sweeps), wherever the machine is:
#   1. a copy already there: <data dir>/raw/fashion-mnist/ ($RR_DATA_DIR, default data/), or
#      /usr/share/datasets/fashion-mnist/ (the optional Debian package dataset-fashion-mnist;
#      not looked at when RR_NO_SYSTEM_DATA is set);
#   2. else the four published files are downloaded with pooch into <data dir>/raw/fashion-mnist/,
#      each checked against its published MD5 ($RR_FASHION_MNIST_URL replaces the download location);
#   3. else, only where apt-get can run (root or passwordless sudo) and RR_NO_SYSTEM_DATA is unset,
#      the Debian package is installed.
# Says what it did; exits non-zero, naming the problem, when the data are still missing.
# Python: $PY, else the project's .venv, else python3 (needs numpy, requests and pooch: `make setup`).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SYS=/usr/share/datasets/fashion-mnist
LOCAL="${RR_DATA_DIR:-$HERE/../data}/raw/fashion-mnist"
PY="${PY:-$HERE/../.venv/bin/python}"
[ -x "$PY" ] || PY=python3
no_system() { case "${RR_NO_SYSTEM_DATA:-}" in ""|0|false|no|FALSE|NO|False|No) return 1;; *) return 0;; esac; }

if "$PY" -c "import numpy, pooch, requests" 2>/dev/null; then
    if "$PY" "$HERE/download_mnist.py" --dataset fashion-mnist --if-missing; then
        exit 0
    fi
    echo "ensure_fashion_mnist: the download did not work (reason above)" >&2
else
    echo "ensure_fashion_mnist: $PY cannot import numpy, pooch and requests (run \`make setup\`); no download tried" >&2
    have() { ls "$1"/train-images-idx3-ubyte* >/dev/null 2>&1; }
    if have "$LOCAL" || { ! no_system && have "$SYS"; }; then
        echo "ensure_fashion_mnist: a copy is present ($LOCAL or $SYS)" >&2
        exit 0
    fi
fi

fail() {
    echo "ensure_fashion_mnist: Fashion-MNIST is missing: $1. Put its four IDX files (.gz) in $LOCAL," \
         "rerun where the download works (make data), or install the Debian package dataset-fashion-mnist." >&2
    exit 1
}
if no_system; then fail "RR_NO_SYSTEM_DATA is set, so the Debian package is not tried"; fi
if ! command -v apt-get >/dev/null; then fail "apt-get is not available either"; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        fail "apt-get needs root (no passwordless sudo)"
    fi
fi
echo "ensure_fashion_mnist: trying the Debian package dataset-fashion-mnist (apt-get, ~30 MB) into $SYS" >&2
if { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        dataset-fashion-mnist >/dev/null; } && ls "$SYS"/train-images-idx3-ubyte* >/dev/null 2>&1; then
    echo "ensure_fashion_mnist: Fashion-MNIST installed in $SYS (Debian package)" >&2
else
    fail "apt-get could not install dataset-fashion-mnist"
fi
