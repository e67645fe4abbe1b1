# phx, the user command.
$(if $(wildcard cli/*.c),$(eval $(call phx_prog,phx,cli)))
