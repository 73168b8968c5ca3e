#!/bin/sh
# Prints the path of a Python 3.13+ interpreter that really runs, or nothing. pyenv's shims refuse to run a
# version that is not selected, so each candidate is run once and asked for its own executable.
real() {
    "$@" -c 'import sys; assert sys.version_info >= (3, 13); print(sys.executable)' 2>/dev/null
}
for name in python3 python3.14 python3.13; do
    real "$name" && exit 0
done
if command -v pyenv >/dev/null 2>&1; then
    for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[3-9]|[2-9][0-9])' | sort -rV); do
        PYENV_VERSION="$version" real python3 && exit 0
    done
    for path in "$(pyenv root)"/versions/3.1[3-9]*/bin/python3; do
        [ -x "$path" ] && real "$path" && exit 0
    done
fi
exit 0
