# Licensed to the Apache Software Foundation (ASF) under one
# or more contributor license agreements.  See the NOTICE file
# distributed with this work for additional information
# regarding copyright ownership.  The ASF licenses this file
# to you under the Apache License, Version 2.0 (the
# "License"); you may not use this file except in compliance
# with the License.  You may obtain a copy of the License at
#
#   http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing,
# software distributed under the License is distributed on an
# "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
# KIND, either express or implied.  See the License for the
# specific language governing permissions and limitations
# under the License.

# Milagro Server image: one node whose role is chosen by its install
# manifest (MILAGRO_MANIFEST: quickstart, principal, fiduciary, beneficiary,
# dta). compose.yaml runs a principal, two fiduciaries and a beneficiary.
#
#   docker build -t milagro-server .
#   docker run -p 7070:7070 -e MILAGRO_INSTALL_ARGS="--listen 0.0.0.0:7070 --insecure-plain-http" milagro-server
#
# This image is not built in CI (no Docker engine there). Its two steps are
# the ones the tests do run: the build is the cargo command milagro-install
# itself runs (plus the installer), and the container's start is the
# installer invocation of tests/tests/install.rs (`--artifacts DIR`, so
# nothing is built at run time), then `milagro serve` in the foreground.

# --- build -------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
        -p milagro-install -p milagro \
        -p milagro-plugin-custody-principal -p milagro-plugin-custody-fiduciary \
        -p milagro-plugin-beneficiary -p milagro-plugin-dta -p milagro-plugin-example \
        -p milagro-plugin-mpin \
        -p milagro-plugin-hsm-keystore \
    && mkdir -p /artifacts \
    && cp target/release/milagro target/release/milagro-install target/release/libmilagro_plugin_*.so /artifacts/

# --- runtime -----------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /artifacts/ /usr/lib/milagro/artifacts/
COPY manifests/ /usr/share/milagro/manifests/
RUN ln -s /usr/lib/milagro/artifacts/milagro-install /usr/local/bin/milagro-install
ENV MILAGRO_MANIFEST=quickstart \
    MILAGRO_INSTALL_ARGS=""
# Node data (keys, identity, database): keep it on a volume; a re-install at
# each start keeps the identity.
VOLUME ["/opt/milagro/var"]
EXPOSE 7070
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s \
    CMD curl -fs "http://127.0.0.1:${MILAGRO_HTTP_PORT:-7070}/v1/status" >/dev/null || exit 1
# shellcheck disable=SC2086
ENTRYPOINT ["/bin/sh", "-c", "milagro-install --manifest /usr/share/milagro/manifests/${MILAGRO_MANIFEST}.toml --prefix /opt/milagro --artifacts /usr/lib/milagro/artifacts $MILAGRO_INSTALL_ARGS && exec /opt/milagro/bin/milagro serve --config /opt/milagro/etc/milagro/host.toml"]
