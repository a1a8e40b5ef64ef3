#!/usr/bin/env bash
# Installs the Apache Flink jars (the PyPI `apache-flink` 2.3.x wheel and its
# `apache-flink-libraries`, which carries pyflink/lib and pyflink/opt) into a
# bench venv under ~/.cache/weir/, then compiles CardVelocity.java against them
# with the system Java 17. Idempotent: a second run only checks and prints.
# Prints two lines: the pyflink directory (lib/, opt/, conf/) and the classes.
#
# Only the jars are needed for a Java job, so the wheel is installed without
# its Python dependencies (apache-beam, pandas, pyarrow...: PyFlink's Python
# UDF bridge, which this benchmark does not use).
set -euo pipefail

FLINK_VERSION=${FLINK_VERSION:-2.3.0}
VENV=${WEIR_FLINK_VENV:-$HOME/.cache/weir/flink-venv-$FLINK_VERSION}
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLASSES=$VENV/classes

[[ -x $JAVA_HOME/bin/javac ]] || { echo "setup.sh: no javac under JAVA_HOME=$JAVA_HOME (install openjdk-17-jdk-headless)" >&2; exit 1; }

if [[ ! -f $VENV/.installed ]]; then
    echo "setup.sh: installing apache-flink==$FLINK_VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        "apache-flink==$FLINK_VERSION" "apache-flink-libraries==$FLINK_VERSION" >&2
    touch "$VENV/.installed"
fi

PYFLINK=$("$VENV/bin/python" -c 'import os, importlib.util as u; print(os.path.dirname(u.find_spec("pyflink").origin))')
ls "$PYFLINK"/lib/flink-dist*.jar >/dev/null 2>&1 || { echo "setup.sh: no flink-dist jar under $PYFLINK/lib" >&2; exit 1; }

# Recompile only when the source is newer than the classes.
if [[ ! -f $CLASSES/CardVelocity.class || $HERE/CardVelocity.java -nt $CLASSES/CardVelocity.class ]]; then
    rm -rf "$CLASSES" && mkdir -p "$CLASSES"
    "$JAVA_HOME/bin/javac" -Xlint:deprecation -cp "$PYFLINK/lib/*:$PYFLINK/opt/*" -d "$CLASSES" "$HERE/CardVelocity.java" >&2
fi
echo "$PYFLINK"
echo "$CLASSES"
