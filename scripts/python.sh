# Sourced by setup.sh, test.sh and demo.sh (from the repository root): sets PY, the Python audionas is
# installed into and run with. $PYTHON when set (each caller makes a relative one absolute before its cd);
# else .venv's once setup made it (and pip works in it: a half-made one is ignored);
# else python3, unless that is an externally managed system Python (PEP 668, e.g. Debian 12's
# /usr/bin/python3: pip refuses to install there), for which setup.sh makes .venv.
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif [ -x .venv/bin/python ] && .venv/bin/python -m pip --version >/dev/null 2>&1; then
  PY=.venv/bin/python
else
  PY=python3
fi
externally_managed() {
  "$1" -c 'import os, sys, sysconfig
sys.exit(not (sys.prefix == sys.base_prefix
              and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))))'
}
