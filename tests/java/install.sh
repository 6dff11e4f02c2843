#!/usr/bin/env bash
# Installs the Java side of the tests through Maven (Maven Central): Kafka's
# client, tools and broker of the version in pom.xml, and compiles the test
# programs under src/. Writes target/classpath.txt (the dependencies) for
# the Rust tests and scripts/kafka-reference.sh.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v mvn >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null
    else
        echo "Java 17 and Maven are needed (e.g. apt-get install openjdk-17-jdk-headless maven)" >&2
        exit 1
    fi
fi
mvn -B -q compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
