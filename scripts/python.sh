# Sourced by setup.sh, test.sh and demo.sh (from the repository root): sets PY, the Python audionas is
# installed into and run with. $PYTHON when set; else .venv's once setup made it; else python3, unless that is
# an externally managed system Python (PEP 668, e.g. Debian 12's /usr/bin/python3: pip refuses to install
# there), for which setup.sh makes .venv.
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  PY=python3
fi
externally_managed() {
  "$1" -c 'import os, sys, sysconfig
sys.exit(not (sys.prefix == sys.base_prefix
              and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))))'
}
