# libphx: logging, config, errors, JSON, wire framing, HTTP, munge.
$(eval $(call phx_lib,phx,lib))
