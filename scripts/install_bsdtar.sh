#!/usr/bin/env bash
# bsdtar (libarchive) reads RAR (.cbr) and 7-Zip (.cb7) comic archives. macOS and Windows 10+ have it as `tar`;
# on Debian/Ubuntu it is the libarchive-tools package. Without it those archives are failed sections that say
# what to install, and their tests skip, saying why.
set -u
if command -v bsdtar >/dev/null 2>&1; then
    echo "install_bsdtar: $(bsdtar --version | cut -d' ' -f1-2) already installed"; exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else echo "install_bsdtar: not root and no sudo: skipped"; exit 0; fi
fi
if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 $SUDO apt-get install -y -q libarchive-tools >/dev/null 2>&1 \
        || { timeout 300 $SUDO apt-get update -q >/dev/null 2>&1 \
             && timeout 300 $SUDO apt-get install -y -q libarchive-tools >/dev/null 2>&1; }
elif command -v dnf >/dev/null 2>&1; then
    timeout 300 $SUDO dnf install -y -q bsdtar >/dev/null 2>&1
fi
if command -v bsdtar >/dev/null 2>&1; then echo "install_bsdtar: installed $(bsdtar --version | cut -d' ' -f1-2)"
else echo "install_bsdtar: could not install bsdtar: the RAR and 7-Zip tests will skip"; fi
exit 0
