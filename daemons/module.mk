# The daemons: one program per folder, added once the folder has sources.
$(if $(wildcard daemons/master/*.c),$(eval $(call phx_prog,phx-master,daemons/master)))
$(if $(wildcard daemons/agent/*.c),$(eval $(call phx_prog,phx-agent,daemons/agent)))
$(if $(wildcard daemons/batchd/*.c),$(eval $(call phx_prog,phx-batchd,daemons/batchd)))
