# libphx_pmix: the agent's PMIx server host.
$(eval $(call phx_lib,phx_pmix,pmix))
