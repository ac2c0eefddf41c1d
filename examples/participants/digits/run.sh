#!/bin/sh
# proctor runs this in the predict phase: read $PROCTOR_INPUT, write $PROCTOR_OUTPUT.
set -eu
exec python3 predict.py "${PROCTOR_INPUT:-/proctor/input}/test.csv" "${PROCTOR_OUTPUT:-/proctor/output}/predictions.csv"
