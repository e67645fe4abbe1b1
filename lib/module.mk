# libphx: logging, config, errors, JSON, wire framing, HTTP, munge, MACs
# (HMAC-SHA256 from libcrypto, in PKGS of the GNUmakefile).
$(eval $(call phx_lib,phx,lib))
