# The daemons: one program per folder, added once the folder has sources.
$(if $(wildcard daemons/master/*.c),$(eval $(call phx_prog,phx-master,daemons/master)))
$(if $(wildcard daemons/agent/*.c),$(eval $(call phx_prog,phx-agent,daemons/agent)))
$(if $(wildcard daemons/batchd/*.c),$(eval $(call phx_prog,phx-batchd,daemons/batchd)))

# phx-shim, the agent's per-task supervisor (daemons/agent/shim): libc only,
# linked statically so that it starts fast (dynamically under sanitizers).
ifneq ($(wildcard daemons/agent/shim/*.c),)
phx-shim_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard daemons/agent/shim/*.c)))
$(BUILD)/bin/phx-shim: $(phx-shim_OBJS)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $(if $(SANFLAGS),,-static) -o $@ $(phx-shim_OBJS)
PROGRAMS += $(BUILD)/bin/phx-shim
endif
