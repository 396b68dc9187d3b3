# Node from the npm registry on the local Debian base (hack/images/base.sh), laid
# out like the official node:*-slim images: node and npm in /usr/local, user
# `node` (1000:1000).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY node /usr/local/bin/node
ADD npm.tgz /usr/local/lib/node_modules/
RUN mv /usr/local/lib/node_modules/package /usr/local/lib/node_modules/npm \
    && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
    && node --version && npm --version
# Empty unless the machine that built the base trusts extra CAs (see base.sh).
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/flux-rtmpd-extra.crt
CMD ["node"]
