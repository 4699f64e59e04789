#!/usr/bin/env bash
# Fashion-MNIST (notebooks 03-06 and 08 on Fashion-MNIST, 09, 10, sweeps): install the Debian package dataset-fashion-mnist
# (/usr/share/datasets/fashion-mnist) when no copy is found. Says what it does;
# exits non-zero when the data are missing and cannot be installed.
set -uo pipefail
SYS=/usr/share/datasets/fashion-mnist
LOCAL="${RR_DATA_DIR:-$(dirname "$0")/../data}/raw/fashion-mnist"
have() { ls "$1"/train-images-idx3-ubyte* >/dev/null 2>&1; }
if have "$SYS" || have "$LOCAL"; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "Fashion-MNIST is missing and apt-get is not available: put its four IDX files in $LOCAL" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo -n"; else
        echo "Fashion-MNIST is missing: run 'apt-get install dataset-fashion-mnist' as root, or put its IDX files in $LOCAL" >&2
        exit 1
    fi
fi
echo "Fashion-MNIST is missing: installing the Debian package dataset-fashion-mnist (apt-get, ~30 MB) into $SYS" >&2
if { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        dataset-fashion-mnist >/dev/null; } && have "$SYS"; then
    echo "Fashion-MNIST installed in $SYS" >&2
else
    echo "could not install dataset-fashion-mnist; the Fashion-MNIST notebooks (03-06 and 08 on it, 09, 10) stop with a message until it is present" >&2
    exit 1
fi
